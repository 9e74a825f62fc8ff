using System.Reflection;
using NewBie.Pipeline;

namespace NewBie.Host;

/// <summary>What this binary is (for --version and logs) and where its default folders live.</summary>
public static class AppInfo
{
    private static readonly Assembly Entry = typeof(AppInfo).Assembly;

    /// <summary>Informational version; the build appends "+commit" (SourceRevisionId) when git is available.</summary>
    public static string Version =>
        Entry.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? Entry.GetName().Version?.ToString() ?? "unknown";

    public static string Commit => Version.Split('+') is [_, var commit, ..] ? commit : "unknown";

    /// <summary>cpu or cuda: the TorchSharp backend package this binary was built with (NewBieBackend).</summary>
    public static string Backend => Metadata("NewBieBackend") ?? "unknown";

    /// <summary>
    /// True for the published single-file binary, whose own assembly is inside the bundle rather than a file beside it.
    /// Its relative default folders (data/, models/) live beside the executable; under dotnet run and dotnet test they
    /// stay relative to the working folder.
    /// </summary>
    public static bool IsSingleFile { get; } = !File.Exists(Path.Combine(AppContext.BaseDirectory, Entry.GetName().Name + ".dll"));

    public static string ResolvePath(string path) =>
        Path.IsPathRooted(path) || !IsSingleFile ? Path.GetFullPath(path) : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, path));

    /// <summary>The lines printed by <c>NewBie --version</c>. Asking libtorch for its version loads the native backend.</summary>
    public static IEnumerable<string> VersionLines()
    {
        yield return $"NewBie {Version.Split('+')[0]}";
        yield return $"commit {Commit}";
        yield return $"backend {Backend}";
        yield return $"TorchSharp {typeof(TorchSharp.torch).Assembly.GetName().Version}";
        string libtorch;
        try
        {
            libtorch = TorchSharp.torch.__version__;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            libtorch = $"not loadable ({e.GetBaseException().Message})";
        }
        yield return $"libtorch {libtorch}";
        yield return $"cuda {(SafeCudaAvailable() ? "available" : "not available")}";
        yield return $"pipeline {typeof(NewBiePipeline).Assembly.GetName().Version}";
    }

    private static bool SafeCudaAvailable()
    {
        try { return TorchSharp.torch.cuda.is_available(); }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException) { return false; }
    }

    private static string? Metadata(string key) =>
        Entry.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value;
}
