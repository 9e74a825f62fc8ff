using NewBie.Host;
using NewBie.Host.Accounts;
using NewBie.Host.Admin;
using NewBie.Host.Api;
using NewBie.Host.Cli;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using NewBie.Host.Studio;
using NewBie.Host.Telemetry;

// CJK prompts and progress bars on a Windows console need UTF-8 output (a no-op elsewhere).
Console.OutputEncoding = System.Text.Encoding.UTF8;
if (args is ["--version"] or ["version"])
{
    foreach (var line in AppInfo.VersionLines()) Console.WriteLine(line);
    return 0;
}
// Verbs: serve (the default), generate, models, users, keys.
var verb = args is [var first, ..] && !first.StartsWith('-') ? first : "serve";
if (verb is "users" or "keys") return AccountsCli.Run(verb, args[1..], Console.Out, Console.Error);
if (verb == "generate") return GenerateCommand.Run(args[1..]);
if (verb == "models") return await ModelsCli.RunAsync(args[1..], Spectre.Console.AnsiConsole.Console);
if (verb != "serve")
{
    Console.Error.WriteLine($"Unknown verb '{verb}'. Usage: NewBie [serve] [--urls URLS] [--data-dir DIR] [--models-dir DIR] [--model auto|tiny|newbie-exp0.1]");
    Console.Error.WriteLine(GenerateCommand.Usage);
    Console.Error.WriteLine(ModelsCli.Usage);
    return 2;
}
var serveArgs = args is [var v, .. var rest] && v == verb ? rest : args;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = serveArgs,
    // A single-file binary is started from any folder: its static web assets (the admin pages' blazor.web.js) are
    // published beside it, not under the working folder that is the content root.
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
builder.AddTelemetry();
builder.AddStorage();
builder.AddOutputs();
builder.AddModels();
builder.AddJobs();
builder.AddApi();
builder.AddAccounts();
builder.AddWebhooks();
builder.AddOpenApiDocument();
builder.AddAdmin();
builder.AddStudio();

var app = builder.Build();
try
{
    // One process per data folder: take its lock before anything else touches it.
    app.Services.GetRequiredService<DataDirectory>();
}
catch (DataDirectoryInUseException e)
{
    Console.Error.WriteLine(e.Message);
    return 3;
}

app.UseTelemetry();
app.UseApi();
app.MapTelemetry();
app.MapAccounts();
app.MapStudio();
app.MapAdmin();
app.MapJobs();
app.MapSeedContract();
app.MapWebhooks();
app.MapOpenAiImages();
app.MapOpenApiDocument();
app.Run();
return 0;

public partial class Program;
