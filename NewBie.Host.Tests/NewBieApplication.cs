using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Host.Nodes;

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

    // Which server a client talks to, for the helpers that wait on the server's own signals (WaitForStatusAsync).
    private static readonly ConditionalWeakTable<HttpClient, NewBieApplication> ClientApps = [];

    internal static NewBieApplication? Of(HttpClient client) => ClientApps.TryGetValue(client, out var app) ? app : null;

    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        ClientApps.AddOrUpdate(client, this);
    }

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

    /// <summary>Returns the job once it has <paramref name="status"/> (20 s at most unless told otherwise): <see cref="WaitForJobAsync"/>.</summary>
    public static Task<JsonElement> WaitForStatusAsync(this HttpClient client, string id, string status, TimeSpan? timeout = null) =>
        client.WaitForJobAsync(id, job => job.GetProperty("status").GetString() == status, status, timeout);

    /// <summary>
    /// Returns the job once <paramref name="condition"/> holds for it (20 s at most unless told otherwise), reading it
    /// again only when something changed: on an in-process server at each change of its job store (or a signal from
    /// another node), on a child server at each event of the job's event stream. <paramref name="what"/> names the
    /// awaited state in the failure.
    /// </summary>
    public static Task<JsonElement> WaitForJobAsync(this HttpClient client, string id, Func<JsonElement, bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        return NewBieApplication.Of(client) is { } app
            ? WaitInProcessAsync(client, app, id, condition, what, deadline)
            : WaitOnEventsAsync(client, id, condition, what, deadline);
    }

    private static async Task<JsonElement> WaitInProcessAsync(HttpClient client, NewBieApplication app, string id, Func<JsonElement, bool> condition, string what,
        DateTime deadline)
    {
        var store = app.Service<JobStore>();
        // With several nodes a change saved by another one reaches this node as a signal, not as a change of its store.
        var signals = app.Services.GetService<IJobSignals>();
        var signalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnSignal(JobSignal _) => Volatile.Read(ref signalled).TrySetResult();
        if (signals is not null) signals.Received += OnSignal;
        try
        {
            while (true)
            {
                // Both signals are taken before the read: a change after it completes them.
                var changed = store.NextChange;
                Volatile.Write(ref signalled, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
                var job = await client.GetJobAsync(id);
                if (condition(job)) return job;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) Assert.Fail($"job {id} is {job}, not {what}");
                await Task.WhenAny(changed, signalled.Task, Task.Delay(left));
            }
        }
        finally
        {
            if (signals is not null) signals.Received -= OnSignal;
        }
    }

    /// <summary>A child server: its event stream of the job wakes the reads; it ends with the job, which then stays as it is.</summary>
    private static async Task<JsonElement> WaitOnEventsAsync(HttpClient client, string id, Func<JsonElement, bool> condition, string what, DateTime deadline)
    {
        using var timeout = new CancellationTokenSource(deadline - DateTime.UtcNow);
        JsonElement job = default;
        try
        {
            using var response = await client.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            response.EnsureSuccessStatusCode();
            using var events = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
            // Read once the stream is open, so that no change falls between the read and the first event.
            job = await client.GetJobAsync(id);
            if (condition(job)) return job;
            while (await events.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.Length > 0) continue; // an event ends with an empty line
                job = await client.GetJobAsync(id);
                if (condition(job)) return job;
            }
            job = await client.GetJobAsync(id);
            if (condition(job)) return job;
            Assert.Fail($"job {id} finished as {job}, not {what}");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Assert.Fail($"job {id} is {(job.ValueKind == JsonValueKind.Undefined ? "unknown" : job)}, not {what}");
        }
        throw new InvalidOperationException("unreachable");
    }

    public static async Task<JsonElement> ProblemAsync(this HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public static string Str(this JsonElement e, string name) => e.GetProperty(name).GetString()!;
}
