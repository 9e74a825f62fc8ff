using NewBie.Host.Accounts;
using NewBie.Host.Models;
using NewBie.Host.Storage;

namespace NewBie.Host.Cli;

/// <summary>
/// The command line's verbs: <c>serve</c> (the default), <c>generate</c>, <c>models</c>, <c>users</c>, <c>keys</c>, <c>storage</c>,
/// <c>version</c>. Every verb but serve runs here to completion; serve builds the web app in Program.cs.
/// </summary>
public static class Verbs
{
    public const string ServeUsage = "Usage: NewBie [serve] [--urls URLS] [--data-dir DIR] [--models-dir DIR] [--model auto|tiny|newbie-exp0.1]";

    /// <summary>Runs a one-shot verb and returns its exit code; null when the arguments ask to serve.</summary>
    public static async Task<int?> RunAsync(string[] args)
    {
        if (args is ["--version"] or ["version"])
        {
            foreach (var line in AppInfo.VersionLines()) Console.WriteLine(line);
            return 0;
        }
        return Verb(args) switch
        {
            "serve" => null,
            "users" or "keys" => AccountsCli.Run(args[0], args[1..], VerbConfiguration(), Console.Out, Console.Error),
            "generate" => GenerateCommand.Run(args[1..]),
            "storage" => StorageCli.Run(args[1..], VerbConfiguration(), Console.Out, Console.Error),
            "models" => await ModelsCli.RunAsync(args[1..], Spectre.Console.AnsiConsole.Console),
            var unknown => Unknown(unknown),
        };
    }

    /// <summary>The host's own setting (Microsoft.Extensions.Hosting) for watching appsettings.json.</summary>
    internal const string ReloadConfigOnChange = "hostBuilder:reloadConfigOnChange";

    /// <summary>The arguments of serve: everything after the verb, or everything when the verb was left out.</summary>
    public static string[] ServeArguments(string[] args) => args is ["serve", .. var rest] ? rest : args;

    /// <summary>
    /// The web app's builder for <c>serve</c>: the command line's own short options (--data-dir, --models-dir, --model)
    /// map onto their configuration keys.
    /// </summary>
    public static WebApplicationBuilder CreateServeBuilder(string[] serveArgs)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            // appsettings.json is read once (a change takes a restart, as for most settings here anyway): reloading on
            // change watches the whole content root, the working folder, where data/ usually is, and the watcher then
            // reads an inotify event for every database write (8.5 % of the server's CPU under a burst of submits).
            Args = [.. serveArgs, $"--{ReloadConfigOnChange}=false"],
            // A single-file binary is started from any folder: its static web assets (the admin pages' blazor.web.js)
            // are published beside it, not under the working folder that is the content root.
            WebRootPath = AppInfo.IsSingleFile ? Path.Combine(AppContext.BaseDirectory, "wwwroot") : null,
        });
        builder.Configuration.AddCommandLine(serveArgs, new Dictionary<string, string>
        {
            ["--data-dir"] = $"{StorageOptions.Section}:{nameof(StorageOptions.DataDir)}",
            ["--models-dir"] = $"{ModelsOptions.Section}:{nameof(ModelsOptions.ModelsDir)}",
            ["--model"] = $"{ModelsOptions.Section}:{nameof(ModelsOptions.Model)}",
        });
        // Runs as a Windows service when started by the service manager; does nothing otherwise.
        builder.Services.AddWindowsService(o => o.ServiceName = "NewBie");
        return builder;
    }

    /// <summary>The settings serve would read besides its command line: appsettings.json of the working folder, then the environment (Storage__DataDir, ConnectionStrings__Postgres).</summary>
    private static IConfiguration VerbConfiguration() => new ConfigurationBuilder()
        .AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true)
        .AddEnvironmentVariables()
        .Build();

    private static string Verb(string[] args) => args is [var first, ..] && !first.StartsWith('-') ? first : "serve";

    private static int Unknown(string verb)
    {
        Console.Error.WriteLine($"Unknown verb '{verb}'. {ServeUsage}");
        Console.Error.WriteLine(GenerateCommand.Usage);
        Console.Error.WriteLine(ModelsCli.Usage);
        Console.Error.WriteLine(StorageCli.Usage);
        return 2;
    }
}
