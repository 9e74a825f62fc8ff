using NewBie.Host.Accounts;
using NewBie.Host.Admin;
using NewBie.Host.Api;
using NewBie.Host.Cli;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Host.Nodes;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using NewBie.Host.Studio;
using NewBie.Host.Telemetry;

// CJK prompts and progress bars on a Windows console need UTF-8 output (a no-op elsewhere).
Console.OutputEncoding = System.Text.Encoding.UTF8;
if (await Verbs.RunAsync(args) is { } exitCode) return exitCode;

var builder = Verbs.CreateServeBuilder(Verbs.ServeArguments(args));
builder.AddTelemetry();
builder.AddStorage();
builder.AddOutputs();
builder.AddModels();
builder.AddJobs();
builder.AddNodes();
builder.AddApi();
builder.AddAccounts();
builder.AddWebhooks();
builder.AddOpenApiDocument();
builder.AddAdmin();
builder.AddStudio();

var app = builder.Build();
if (!app.TryLockDataDirectory()) return 3;

// Middleware, in this order.
app.UseTelemetry();        // first: the request log line times and sees the whole request
app.UseApi();              // unhandled exceptions and bare status codes become problem+json
app.UseAdminAssets();      // blazor.web.js, before routing: a static file needs no endpoint
app.UseRouting();
app.UseAuthentication();   // who is calling: API key, sign-in cookie, or the loopback local admin
app.UseRequestBodyLimits(); // body size by caller (anonymous: smallest) before anything reads it; slow or cut-off bodies 408/400
app.UseSameOriginWrites();  // cookie-authenticated writes only from this origin or with an antiforgery token
app.UseAuthorization();    // the endpoints' policies (Policies.User, Policies.Admin)
app.UseAntiforgery();      // the sign-in form's token

// Endpoints.
app.MapTelemetry();
app.MapAccounts();
app.MapStudio();
app.MapAdmin();
app.MapJobs();
app.MapNodes();
app.MapSeedContract();
app.MapWebhooks();
app.MapOpenAiImages();
app.MapOpenApiDocument();
app.Run();
return 0;

public partial class Program;
