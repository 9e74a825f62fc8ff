using System.Text.Json;

namespace NewBie.Host.Tests.Studio;

/// <summary>
/// The CSS library is committed under NewBie.Host/wwwroot/css (so `dotnet run` needs no node), pinned by
/// vendor/package.json and its lock: the committed copy must be exactly what the pin installs.
/// </summary>
public sealed class VendoredCssTests
{
    private static readonly string Root = FindRoot();

    [Fact]
    public void The_pin_in_package_json_and_the_lock_agree()
    {
        using var package = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "vendor", "package.json")));
        using var lockFile = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "vendor", "package-lock.json")));
        var pinned = package.RootElement.GetProperty("dependencies").GetProperty("@picocss/pico").GetString();
        var locked = lockFile.RootElement.GetProperty("packages").GetProperty("node_modules/@picocss/pico").GetProperty("version").GetString();
        Assert.Equal(pinned, locked);
        Assert.True(File.Exists(Path.Combine(Root, "NewBie.Host", "wwwroot", "css", "pico.LICENSE.md")), "the library's licence travels with it");
    }

    [NodeModulesFact]
    public void The_committed_css_is_the_pinned_package_file_byte_for_byte()
    {
        var installed = Path.Combine(Root, "vendor", "node_modules", "@picocss", "pico");
        using var package = JsonDocument.Parse(File.ReadAllText(Path.Combine(installed, "package.json")));
        using var pin = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "vendor", "package.json")));
        Assert.Equal(pin.RootElement.GetProperty("dependencies").GetProperty("@picocss/pico").GetString(), package.RootElement.GetProperty("version").GetString());
        Assert.Equal(File.ReadAllBytes(Path.Combine(installed, "css", "pico.min.css")),
            File.ReadAllBytes(Path.Combine(Root, "NewBie.Host", "wwwroot", "css", "pico.min.css")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(installed, "LICENSE.md")),
            File.ReadAllBytes(Path.Combine(Root, "NewBie.Host", "wwwroot", "css", "pico.LICENSE.md")));
    }

    internal static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NewBie.slnx"))) return dir.FullName;
        throw new InvalidOperationException("NewBie.slnx not found above the test binaries");
    }

    /// <summary>Runs where vendor/node_modules is installed (.ci/run does `npm ci` there); else skips, unless NEWBIE_REQUIRE_CHROMIUM (CI) is set.</summary>
    public sealed class NodeModulesFactAttribute : FactAttribute
    {
        public NodeModulesFactAttribute()
        {
            if (Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_CHROMIUM") is { Length: > 0 }) return;
            if (!Directory.Exists(Path.Combine(FindRoot(), "vendor", "node_modules", "@picocss"))) Skip = "vendor/node_modules is not installed (cd vendor && npm ci)";
        }
    }
}
