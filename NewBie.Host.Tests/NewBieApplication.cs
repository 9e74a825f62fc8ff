using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using NewBie.Host.Models;

namespace NewBie.Host.Tests;

/// <summary>
/// The real server on a temp data folder, with a fake clock and the scripted engine. To run the end-to-end tests on
/// the built-in tiny model instead, drop the IEngineFactory line (and set Models:Model to tiny).
/// </summary>
public sealed class NewBieApplication : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;
    private readonly bool _scripted, _generousLimits;
    private readonly IEngineFactory? _engineFactory;
    private Action<IServiceCollection>? _services;

    /// <param name="engineFactory">An engine of the test's own making (e.g. the tiny model with injected faults) instead of the scripted one.</param>
    /// <param name="services">Last-word service replacements (e.g. a fake free-space probe).</param>
    /// <param name="generousLimits">False: the limits of a fresh install instead of <see cref="TestAccounts.GenerousLimits"/>.</param>
    public NewBieApplication(Dictionary<string, string?>? settings = null, bool scriptedEngine = true, IEngineFactory? engineFactory = null,
        Action<IServiceCollection>? services = null, bool generousLimits = true)
    {
        _generousLimits = generousLimits;
        _settings = settings ?? [];
        _scripted = scriptedEngine;
        _engineFactory = engineFactory;
        _services = services;
    }

    public string DataDir { get; } = Directory.CreateTempSubdirectory("newbie-host-").FullName;

    public ScriptedEngine Engine { get; } = new();

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));

    public T Service<T>() where T : notnull => Services.GetRequiredService<T>();

    /// <summary>More last-word service registrations (e.g. a simulated GPU); call before the server starts.</summary>
    public NewBieApplication WithServices(Action<IServiceCollection> services)
    {
        _services += services;
        return this;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Storage:DataDir", DataDir);
        builder.UseSetting("Models:ModelsDir", Path.Combine(DataDir, "no-models"));
        builder.UseSetting("Serilog:MinimumLevel:Default", "Warning");
        if (_generousLimits) foreach (var (key, value) in TestAccounts.GenerousLimits) builder.UseSetting(key, value);
        foreach (var (key, value) in _settings) builder.UseSetting(key, value);
        builder.ConfigureServices(services =>
        {
            if (_engineFactory is not null) services.AddSingleton(_engineFactory);
            else if (_scripted) services.AddSingleton<IEngineFactory>(new ScriptedEngineFactory(Engine));
            services.AddSingleton<TimeProvider>(Time);
            _services?.Invoke(services);
        });
    }

    /// <summary>A client with an API key of <paramref name="user"/> (created as a plain user when missing; default "local").</summary>
    public HttpClient ClientFor(string? user = null) => this.ClientWithKey(user ?? "local");

    protected override void Dispose(bool disposing)
    {
        Engine.Release();
        base.Dispose(disposing);
        if (disposing)
        {
            try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
        }
    }
}

public static class ApiClient
{
    public static async Task<JsonElement> SubmitAsync(this HttpClient client, object body, string? idempotencyKey = null)
    {
        using var response = await client.PostRawAsync("/v1/jobs", body, idempotencyKey);
        if (response.StatusCode != System.Net.HttpStatusCode.Accepted)
            Assert.Fail($"submit answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public static Task<HttpResponseMessage> PostRawAsync(this HttpClient client, string path, object body, string? idempotencyKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = body as HttpContent ?? JsonContent.Create(body) };
        if (idempotencyKey is not null) request.Headers.Add("Idempotency-Key", idempotencyKey);
        return client.SendAsync(request);
    }

    public static async Task<JsonElement> GetJobAsync(this HttpClient client, string id) =>
        await client.GetFromJsonAsync<JsonElement>($"/v1/jobs/{id}");

    /// <summary>Polls a job until it reaches <paramref name="status"/> (20 s at most unless told otherwise).</summary>
    public static async Task<JsonElement> WaitForStatusAsync(this HttpClient client, string id, string status, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            var job = await client.GetJobAsync(id);
            if (job.GetProperty("status").GetString() == status) return job;
            if (DateTime.UtcNow > deadline) Assert.Fail($"job {id} is {job}, not {status}");
            await Task.Delay(20);
        }
    }

    public static async Task<JsonElement> ProblemAsync(this HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public static string Str(this JsonElement e, string name) => e.GetProperty(name).GetString()!;
}
