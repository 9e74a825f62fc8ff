using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Jobs;
using NewBie.Pipeline;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Tests.Api;

public sealed class JobsApiTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Submit_returns_202_with_location_and_status_fields()
    {
        var client = _app.ClientFor();
        using var response = await client.PostRawAsync("/v1/jobs", new { prompt = "1girl, smile", width = 256, height = 256, steps = 2 });

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        var id = body.Str("id");
        Assert.Equal($"/v1/jobs/{id}", response.Headers.Location?.OriginalString);
        Assert.Equal($"/v1/jobs/{id}", body.Str("status_url"));
        Assert.Equal($"/v1/jobs/{id}/events", body.Str("events_url"));
        Assert.Contains(body.Str("status"), new[] { "queued", "running", "succeeded" });
        Assert.True(body.TryGetProperty("queue_position", out _));
        Assert.True(body.TryGetProperty("eta_seconds", out _));
    }

    [Fact]
    public async Task Job_runs_end_to_end_and_its_png_decodes_to_the_engine_image()
    {
        var client = _app.ClientFor();
        var submitted = await client.SubmitAsync(new { prompt = "<character_1><n>miku</n></character_1><general_tags>smile</general_tags>", width = 64 * 4, height = 16 * 20, steps = 3, seed = 7, count = 2 });

        var job = await client.WaitForStatusAsync(submitted.Str("id"), "succeeded");

        Assert.Equal(1, job.GetProperty("attempts").GetInt32());
        Assert.Equal(7, job.GetProperty("params").GetProperty("seed").GetInt64());
        Assert.Equal("euler", job.GetProperty("params").Str("sampler"));
        Assert.Equal(JsonValueKind.Null, job.GetProperty("error").ValueKind);
        var images = job.GetProperty("images").EnumerateArray().ToList();
        Assert.Equal(2, images.Count);
        foreach (var image in images)
        {
            var seed = image.GetProperty("seed").GetInt64();
            using var png = await client.GetAsync(image.Str("url"));
            Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);
            var (w, h, rgb) = PngDecoder.Decode(await png.Content.ReadAsByteArrayAsync());
            Assert.Equal((256, 320), (w, h));
            Assert.Equal(ScriptedEngine.Pattern(256, 320, seed), rgb);
        }
        Assert.Equal([7L, 8L], images.Select(i => i.GetProperty("seed").GetInt64()));
    }

    [Fact]
    public async Task Demo_preset_runs_the_official_demo_settings_echoed_in_params_and_png()
    {
        var client = _app.ClientFor();
        var submitted = await client.SubmitAsync(new { prompt = "tags", width = 256, height = 256, preset = "demo", seed = 3 });

        var job = await client.WaitForStatusAsync(submitted.Str("id"), "succeeded");

        var p = job.GetProperty("params");
        Assert.Equal(("demo", "midpoint", 17, 5.0, 0.25, 0.0, 6.0), (p.Str("preset"), p.Str("sampler"), p.GetProperty("steps").GetInt32(),
            p.GetProperty("guidance").GetDouble(), p.GetProperty("cfg_trunc").GetDouble(), p.GetProperty("renorm").GetDouble(), p.GetProperty("shift").GetDouble()));
        var ran = _app.Engine.LastRequest!;
        Assert.Equal((SamplerKind.Midpoint, 17, 0.25, 0.0, 6.0, "demo"), (ran.Sampler, ran.Steps, ran.CfgTrunc, ran.RenormCfg, ran.Shift, ran.Preset));
        using var png = await client.GetAsync(job.GetProperty("images")[0].Str("url"));
        var image = PngReader.Read(await png.Content.ReadAsByteArrayAsync());
        Assert.Equal(("demo", "0.25", "0", "6"), (image.TextOf("preset"), image.TextOf("cfg_trunc"), image.TextOf("renorm"), image.TextOf("shift")));
        Assert.Contains("CFG truncation: 0.25, CFG renorm: 0, Shift: 6, Preset: demo", image.TextOf("parameters"));
    }

    [Fact]
    public async Task Explicit_sampler_fields_override_the_preset_and_defaults_are_echoed()
    {
        _app.Engine.Hold();
        var client = _app.ClientFor();
        var demo = (await client.SubmitAsync(new { prompt = "tags", width = 256, height = 256, preset = "demo", sampler = "euler", steps = 4, cfg_trunc = 0.5, renorm = 2.0, shift = 3.0 })).Str("id");
        var plain = (await client.SubmitAsync(new { prompt = "tags", width = 256, height = 256 })).Str("id");

        var p = (await client.GetJobAsync(demo)).GetProperty("params");
        Assert.Equal(("demo", "euler", 4, 0.5, 2.0, 3.0), (p.Str("preset"), p.Str("sampler"), p.GetProperty("steps").GetInt32(),
            p.GetProperty("cfg_trunc").GetDouble(), p.GetProperty("renorm").GetDouble(), p.GetProperty("shift").GetDouble()));
        var d = (await client.GetJobAsync(plain)).GetProperty("params");
        Assert.Equal(("default", "euler", 28, 1.0, 1.0, 6.0), (d.Str("preset"), d.Str("sampler"), d.GetProperty("steps").GetInt32(),
            d.GetProperty("cfg_trunc").GetDouble(), d.GetProperty("renorm").GetDouble(), d.GetProperty("shift").GetDouble()));
    }

    [Fact]
    public async Task Unset_seed_is_resolved_and_stored_before_the_run()
    {
        _app.Engine.Hold();
        var client = _app.ClientFor();
        var id = (await client.SubmitAsync(new { prompt = "tags", width = 256, height = 256, steps = 2 })).Str("id");

        var job = await client.GetJobAsync(id);

        Assert.Equal(JsonValueKind.Number, job.GetProperty("params").GetProperty("seed").ValueKind);
        Assert.Equal(1024 / 4, job.GetProperty("params").GetProperty("width").GetInt32());
        Assert.Equal(5.0, job.GetProperty("params").GetProperty("guidance").GetDouble());
    }

    [Fact]
    public async Task Events_stream_reports_position_stage_steps_and_done()
    {
        // The stream sends the latest step, not a backlog: the second job waits after step 1 until the reader has seen a step.
        _app.Engine.Hold();
        _app.Engine.PauseAfter("second", 1);
        var client = _app.ClientFor();
        var first = (await client.SubmitAsync(new { prompt = "first", width = 256, height = 256, steps = 2 })).Str("id");
        var second = (await client.SubmitAsync(new { prompt = "second", width = 256, height = 256, steps = 3 })).Str("id");
        await _app.Engine.WaitForStepsAsync(0);

        using var response = await client.GetAsync($"/v1/jobs/{second}/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<(string Name, JsonElement Data)>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var released = false;
        string? name = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add((name!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
            if (!released && events.Count > 0)
            {
                released = true;
                _app.Engine.Release();
            }
            if (events.Count > 0 && events[^1].Name == "step") _app.Engine.Resume();
        }

        Assert.Equal("position", events[0].Name);
        Assert.Equal(1, events[0].Data.GetProperty("queue_position").GetInt32());
        Assert.Contains(events, e => e.Name == "stage" && e.Data.Str("stage") == "denoising");
        var steps = events.Where(e => e.Name == "step").Select(e => e.Data.GetProperty("step").GetInt32()).ToList();
        Assert.NotEmpty(steps);
        Assert.Equal(steps.Order(), steps);
        Assert.All(events.Where(e => e.Name == "step"), e => Assert.Equal(3, e.Data.GetProperty("steps").GetInt32()));
        Assert.Equal("done", events[^1].Name);
        Assert.Equal("succeeded", events[^1].Data.Str("status"));
        Assert.Equal(second, events[^1].Data.Str("id"));
        await client.WaitForStatusAsync(first, "succeeded");
    }

    [Fact]
    public async Task Every_open_stream_receives_every_step_of_its_job_in_order()
    {
        // Steps without delay: a stream handed only the latest record at each wake-up would skip some.
        const int steps = 12, streams = 24;
        _app.Engine.StepDelay = TimeSpan.Zero;
        _app.Engine.Hold();
        var client = _app.ClientFor();
        var blocker = (await client.SubmitAsync(new { prompt = "blocker", width = 256, height = 256, steps = 1 })).Str("id");
        await client.WaitForStatusAsync(blocker, "running");
        var id = (await client.SubmitAsync(new { prompt = "watched", width = 256, height = 256, steps })).Str("id");

        var opened = new List<(HttpResponseMessage Response, StreamReader Reader)>();
        for (var i = 0; i < streams; i++)
        {
            var response = await client.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            // The first event (its place) is written once the stream is subscribed.
            Assert.Equal("event: position", await reader.ReadLineAsync());
            opened.Add((response, reader));
        }
        _app.Engine.Release();

        var seen = await Task.WhenAll(opened.Select(async stream =>
        {
            var (names, stepNumbers) = (new List<string>(), new List<int>());
            string? name = null;
            while (await stream.Reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) names.Add(name = line[7..]);
                else if (line.StartsWith("data: ", StringComparison.Ordinal) && name == "step")
                    stepNumbers.Add(JsonDocument.Parse(line[6..]).RootElement.GetProperty("step").GetInt32());
            }
            stream.Response.Dispose();
            return (Names: names, Steps: stepNumbers);
        }));

        Assert.All(seen, stream =>
        {
            // Step 0 is announced as a stage starts; every denoising step after it exactly once, in order.
            Assert.Equal(Enumerable.Range(1, steps), stream.Steps.Where(step => step > 0));
            Assert.DoesNotContain("dropped", stream.Names);
            Assert.Equal("done", stream.Names[^1]);
        });
        await client.WaitForStatusAsync(blocker, "succeeded");
    }

    [Fact]
    public async Task Another_users_job_is_not_found_on_every_route()
    {
        var alice = _app.ClientFor("alice");
        var bob = _app.ClientFor("bob");
        var id = (await alice.SubmitAsync(new { prompt = "mine", width = 256, height = 256, steps = 1 })).Str("id");
        await alice.WaitForStatusAsync(id, "succeeded");

        foreach (var request in new[]
        {
            new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{id}"),
            new HttpRequestMessage(HttpMethod.Delete, $"/v1/jobs/{id}"),
            new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{id}/events"),
            new HttpRequestMessage(HttpMethod.Get, $"/v1/jobs/{id}/images/0"),
            new HttpRequestMessage(HttpMethod.Get, $"/status/{id}"),
        })
        {
            using var response = await bob.SendAsync(request);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("not_found", (await response.ProblemAsync()).Str("code"));
        }
        using var own = await alice.GetAsync($"/v1/jobs/{id}/images/0");
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
    }

    [Fact]
    public async Task List_returns_only_own_jobs_newest_first_in_pages()
    {
        _app.Engine.Hold();
        var alice = _app.ClientFor("alice");
        var ids = new List<string>();
        for (var i = 0; i < 5; i++) ids.Add((await alice.SubmitAsync(new { prompt = $"job {i}", width = 256, height = 256, steps = 1 })).Str("id"));
        await _app.ClientFor("bob").SubmitAsync(new { prompt = "bob's", width = 256, height = 256, steps = 1 });

        var page1 = await alice.GetFromJsonAsync<JsonElement>("/v1/jobs?limit=3");
        var page2 = await alice.GetFromJsonAsync<JsonElement>($"/v1/jobs?limit=3&cursor={page1.Str("next_cursor")}");
        var queued = await alice.GetFromJsonAsync<JsonElement>("/v1/jobs?status=queued");

        var listed = page1.GetProperty("items").EnumerateArray().Concat(page2.GetProperty("items").EnumerateArray()).Select(j => j.Str("id")).ToList();
        Assert.Equal(Enumerable.Reverse(ids), listed);
        Assert.Equal(JsonValueKind.Null, page2.GetProperty("next_cursor").ValueKind);
        Assert.Equal(4, queued.GetProperty("items").GetArrayLength());
        Assert.All(queued.GetProperty("items").EnumerateArray(), j => Assert.Equal("queued", j.Str("status")));
        using var bad = await alice.GetAsync("/v1/jobs?status=done");
        Assert.Equal("status", (await bad.ProblemAsync()).Str("field"));
    }

    [Fact]
    public async Task A_flooding_user_does_not_delay_others_behind_all_their_jobs()
    {
        _app.Engine.Hold();
        var a = _app.ClientFor("alice");
        var b = _app.ClientFor("bob");
        var c = _app.ClientFor("carol");
        var ids = new List<string>();
        for (var i = 1; i <= 10; i++) ids.Add((await a.SubmitAsync(new { prompt = $"a{i}", width = 256, height = 256, steps = 1 })).Str("id"));
        await a.WaitForStatusAsync(ids[0], "running");
        foreach (var (client, name) in new[] { (b, "b"), (c, "c") })
            for (var i = 1; i <= 2; i++) ids.Add((await client.SubmitAsync(new { prompt = $"{name}{i}", width = 256, height = 256, steps = 1 })).Str("id"));
        _app.Engine.Release();
        foreach (var id in ids.Take(10)) await a.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(60));

        var order = _app.Engine.RunOrder.ToList();
        Assert.Equal(14, order.Count);
        foreach (var other in new[] { "b1", "b2", "c1", "c2" })
            Assert.True(order.IndexOf(other) < order.IndexOf("a4"), $"{other} ran after a4: {string.Join(" ", order)}");
        Assert.Equal(["a1", "b1", "c1", "a2", "b2", "c2", "a3", "a4"], order.Take(8));
    }

    [Fact]
    public async Task Queue_positions_follow_fair_order_across_users()
    {
        _app.Engine.Hold();
        var alice = _app.ClientFor("alice");
        var bob = _app.ClientFor("bob");
        var a1 = (await alice.SubmitAsync(new { prompt = "a1", width = 256, height = 256, steps = 2 })).Str("id");
        await alice.WaitForStatusAsync(a1, "running");
        var a2 = (await alice.SubmitAsync(new { prompt = "a2", width = 256, height = 256, steps = 2 })).Str("id");
        var a3 = (await alice.SubmitAsync(new { prompt = "a3", width = 256, height = 256, steps = 2 })).Str("id");
        var b1 = (await bob.SubmitAsync(new { prompt = "b1", width = 256, height = 256, steps = 2 })).Str("id");
        var low = (await bob.SubmitAsync(new { prompt = "b2", width = 256, height = 256, steps = 2, priority = "low" })).Str("id");

        int Position(JsonElement job) => job.GetProperty("queue_position").GetInt32();
        Assert.Equal(1, Position(await bob.GetJobAsync(b1)));
        Assert.Equal(2, Position(await alice.GetJobAsync(a2)));
        Assert.Equal(3, Position(await alice.GetJobAsync(a3)));
        Assert.Equal(4, Position(await bob.GetJobAsync(low)));
        var etas = new[] { b1, low }.Select(id => bob.GetJobAsync(id).Result.GetProperty("eta_seconds").GetDouble()).ToList();
        Assert.True(etas[0] > 0 && etas[1] > etas[0], $"ETAs grow with position: {string.Join(", ", etas)}");
        Assert.Equal(JsonValueKind.Null, (await alice.GetJobAsync(a1)).GetProperty("queue_position").ValueKind);
    }

    [Fact]
    public async Task Gpu_job_is_created_on_the_gpu_queue_with_the_fair_order_parameters()
    {
        _app.Engine.Hold();
        var accounts = _app.Service<NewBie.Host.Accounts.AccountStore>();
        accounts.AddUser("alice", NewBie.Host.Accounts.Roles.User, password: null);
        accounts.UpdateUser("alice", u => u.PriorityClass = "high");
        var client = _app.ClientFor("alice");
        await client.SubmitAsync(new { prompt = "first", width = 256, height = 256, steps = 1 });
        var id = (await client.SubmitAsync(new { prompt = "second", width = 256, height = 256, steps = 1, priority = "high" })).Str("id");
        var record = _app.Service<JobStore>().Find(id)!;

        using var connection = _app.Service<Hangfire.JobStorage>().GetConnection();
        var data = connection.GetJobData(record.HangfireJobId!);

        Assert.Equal("gpu", data.Job.Queue);
        Assert.Equal(id, data.Job.Args[0]);
        Assert.Equal("\"alice\"", connection.GetJobParameter(record.HangfireJobId!, NewBie.Host.HangfireStorage.FairQueueParameters.UserId));
        Assert.Equal("2", connection.GetJobParameter(record.HangfireJobId!, NewBie.Host.HangfireStorage.FairQueueParameters.Priority));
        Assert.Equal(record.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), connection.GetJobParameter(record.HangfireJobId!, NewBie.Host.HangfireStorage.FairQueueParameters.Seq));
    }

    [Fact]
    public async Task Seed_contract_generate_returns_task_id_and_status_url()
    {
        var client = _app.ClientFor();
        using var response = await client.PostRawAsync("/generate", new { prompt = "1girl" });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var task = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal($"/status/{task.Str("task_id")}", task.Str("status_url"));

        var status = await client.GetFromJsonAsync<JsonElement>(task.Str("status_url"));

        Assert.Equal(task.Str("task_id"), status.Str("task_id"));
        Assert.Contains(status.Str("status"), new[] { "queued", "running", "succeeded" });
    }

    [Fact]
    public async Task Health_is_ok_and_ready_once_the_engine_is_loaded()
    {
        var client = _app.AdminClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        // The answer is held until the engine has loaded (10 s at most).
        using var ready = await client.GetAsync("/readyz?wait=10");
        var body = await ready.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("ready", body.Str("status"));
        Assert.Equal("scripted", body.Str("model"));
    }

    [Fact]
    public async Task Eta_of_a_kind_of_job_comes_from_its_measured_run_times()
    {
        var stats = _app.Service<RunTimeStats>();
        var p = new JobParams { Width = 512, Height = 512, Steps = 10, Count = 1 };
        stats.Record(p, TimeSpan.FromSeconds(10));
        stats.Record(p, TimeSpan.FromSeconds(20));

        Assert.Equal(10 + RunTimeStats.Alpha * (20 - 10), stats.Estimate(p), 6);
        var twice = new JobParams { Width = 512, Height = 512, Steps = 20, Count = 1 };
        Assert.Equal(2 * stats.Estimate(p), stats.Estimate(twice), 6);
        await Task.CompletedTask;
    }
}

public sealed class EngineUnavailableTests : IDisposable
{
    // The real model asked for explicitly, with no weights installed: the server runs but cannot serve.
    private readonly NewBieApplication _app = new(new() { ["Models:Model"] = "newbie-exp0.1" }, scriptedEngine: false);

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Without_an_engine_readyz_says_why_and_submit_is_refused_with_model_not_ready()
    {
        var client = _app.AdminClient();
        // The answer is held until loading has ended (10 s at most).
        using var readyz = await client.GetAsync("/readyz?wait=10");
        var body = await readyz.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, readyz.StatusCode);
        Assert.Equal("unavailable", body.Str("engine"));
        Assert.Contains("incomplete", body.Str("problem"));
        Assert.Contains("transformer", body.Str("problem"));

        using var submit = await client.PostRawAsync("/v1/jobs", new { prompt = "x" });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, submit.StatusCode);
        Assert.Equal("model_not_ready", (await submit.ProblemAsync()).Str("code"));
    }
}
