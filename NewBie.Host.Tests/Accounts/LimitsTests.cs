using NewBie.Host.Tests.Telemetry;
using System.Net;
using System.Net.Http.Json;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Accounts;

public sealed class LimitsTests
{
    private static readonly object Small = new { prompt = "x", width = 256, height = 256, steps = 1 };

    [Fact]
    public async Task Key_burst_then_429_rate_limited_with_retry_after_then_recovers_after_the_refill()
    {
        using var app = new NewBieApplication(new() { ["Accounts:RateLimits:KeyBurst"] = "2", ["Accounts:RateLimits:KeyRefillPeriod"] = "00:00:06" });
        var client = app.ClientWithKey("alice");
        await client.SubmitAsync(Small);
        await client.SubmitAsync(Small);

        using var refused = await client.PostRawAsync("/v1/jobs", Small);
        var otherKey = app.ClientWithKey("alice");
        await otherKey.SubmitAsync(Small);
        app.Time.Advance(TimeSpan.FromSeconds(6));
        using var again = await client.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("rate_limited", (await refused.ProblemAsync()).Str("code"));
        Assert.Equal(TimeSpan.FromSeconds(6), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }

    [Fact]
    public async Task Global_admissions_per_second_are_shared_and_beyond_them_the_server_is_busy()
    {
        using var app = new NewBieApplication(new() { ["Accounts:RateLimits:GlobalPerSecond"] = "2" });
        await app.ClientWithKey("alice").SubmitAsync(Small);
        await app.ClientWithKey("bob").SubmitAsync(Small);

        using var refused = await app.ClientWithKey("carol").PostRawAsync("/v1/jobs", Small);
        app.Time.Advance(TimeSpan.FromSeconds(1));
        using var again = await app.ClientWithKey("carol").PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("server_busy", (await refused.ProblemAsync()).Str("code"));
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }

    [Fact]
    public async Task One_user_takes_at_most_their_share_of_the_global_admissions()
    {
        using var app = new NewBieApplication(new() { ["Accounts:RateLimits:GlobalPerHour"] = "4", ["Accounts:RateLimits:UserShareOfGlobal"] = "0.5" });
        var alice = app.ClientWithKey("alice");
        for (var i = 0; i < 2; i++) await alice.SubmitAsync(Small);

        using var aliceRefused = await alice.PostRawAsync("/v1/jobs", Small);
        for (var i = 0; i < 2; i++) await app.ClientWithKey("bob").SubmitAsync(Small);
        using var carolRefused = await app.ClientWithKey("carol").PostRawAsync("/v1/jobs", Small);
        app.Time.Advance(TimeSpan.FromHours(1));
        using var again = await alice.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.TooManyRequests, aliceRefused.StatusCode);
        Assert.Equal("rate_limited", (await aliceRefused.ProblemAsync()).Str("code"));
        Assert.Equal(TimeSpan.FromHours(1), aliceRefused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, carolRefused.StatusCode);
        Assert.Equal("server_busy", (await carolRefused.ProblemAsync()).Str("code"));
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
        // The refusal is counted for operators, by its problem code.
        await app.AdminClient().WaitForAsync(new() { ["newbie_rate_limited_total{reason=\"rate_limited\"}"] = 1 });
    }

    [Fact]
    public async Task Invalid_and_refused_submits_of_one_user_leave_the_global_budget_to_the_others()
    {
        // The seed article's global windows (2 a second, 100 an hour) and a user who only sends what is refused.
        using var app = new NewBieApplication(new() { ["Accounts:RateLimits:GlobalPerSecond"] = "2", ["Accounts:RateLimits:GlobalPerHour"] = "100" });
        var mallory = app.ClientWithKey("mallory");
        for (var i = 0; i < 150; i++)
        {
            using var invalid = await mallory.PostRawAsync("/v1/jobs", new StringContent("{not json", System.Text.Encoding.UTF8, "application/json"));
            using var outOfRange = await mallory.PostRawAsync("/v1/jobs", new { prompt = "x", width = 250 });
            Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, outOfRange.StatusCode);
            if (i % 2 == 0) app.Time.Advance(TimeSpan.FromSeconds(1));
        }

        using var bobs = await app.ClientWithKey("bob").PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.Accepted, bobs.StatusCode);
    }

    [Fact]
    public async Task Default_limits_let_a_local_user_queue_a_200_prompt_batch()
    {
        // The test host's generous limits removed: what a fresh install has.
        using var app = new NewBieApplication(generousLimits: false);
        app.Engine.Hold();
        var local = app.CreateClient();

        for (var i = 0; i < 200; i++)
        {
            using var response = await local.PostRawAsync("/v1/jobs", new { prompt = $"batch {i}", width = 256, height = 256, steps = 1 });
            Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"prompt {i}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        app.Engine.Release();
    }

    [Fact]
    public async Task Login_attempts_are_limited_per_ip_per_minute()
    {
        using var app = new NewBieApplication(new() { ["Accounts:RateLimits:AnonymousPerIpPerMinute"] = "5" });
        app.Service<AccountStore>().AddUser("admin", Roles.Admin, "correct horse");
        var client = app.CreateClient();
        var wrong = new { username = "admin", password = "guess" };
        for (var i = 0; i < 5; i++)
        {
            using var attempt = await client.PostAsJsonAsync("/v1/auth/login", wrong);
            Assert.Equal(HttpStatusCode.Unauthorized, attempt.StatusCode);
        }

        using var refused = await client.PostAsJsonAsync("/v1/auth/login", new { username = "admin", password = "correct horse" });
        app.Time.Advance(TimeSpan.FromMinutes(1));
        using var again = await client.PostAsJsonAsync("/v1/auth/login", new { username = "admin", password = "correct horse" });

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("rate_limited", (await refused.ProblemAsync()).Str("code"));
        Assert.Equal(TimeSpan.FromMinutes(1), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task User_queue_cap_counts_only_queued_and_running_jobs()
    {
        using var app = new NewBieApplication(new() { ["Accounts:Defaults:MaxQueuedJobs"] = "2" });
        var alice = app.ClientWithKey("alice");
        var first = (await alice.SubmitAsync(Small)).Str("id");
        await alice.WaitForStatusAsync(first, "succeeded");
        app.Engine.Hold();
        var running = (await alice.SubmitAsync(Small)).Str("id");
        await alice.WaitForStatusAsync(running, "running");
        await alice.SubmitAsync(Small);

        using var refused = await alice.PostRawAsync("/v1/jobs", Small);
        var bobs = await app.ClientWithKey("bob").SubmitAsync(Small);
        app.Engine.Release();
        await alice.WaitForStatusAsync(running, "succeeded");
        await app.ClientWithKey("bob").WaitForStatusAsync(bobs.Str("id"), "succeeded");
        using var again = await alice.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("user_queue_full", (await refused.ProblemAsync()).Str("code"));
        Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }

    [Fact]
    public async Task Daily_image_quota_refuses_with_retry_after_midnight_and_resets_the_next_day()
    {
        using var app = new NewBieApplication(new() { ["Accounts:Defaults:ImagesPerDay"] = "3" });
        var alice = app.ClientWithKey("alice");
        await alice.SubmitAsync(new { prompt = "x", width = 256, height = 256, steps = 1, count = 2 });

        using var refused = await alice.PostRawAsync("/v1/jobs", new { prompt = "x", width = 256, height = 256, steps = 1, count = 2 });
        await alice.SubmitAsync(Small);
        using var full = await alice.PostRawAsync("/v1/jobs", Small);
        app.Time.Advance(TimeSpan.FromHours(12));
        using var nextDay = await alice.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Equal("quota_exceeded", (await refused.ProblemAsync()).Str("code"));
        // The fake clock stands at 12:00 UTC.
        Assert.Equal(TimeSpan.FromHours(12), refused.Headers.RetryAfter?.Delta);
        Assert.Equal(HttpStatusCode.TooManyRequests, full.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, nextDay.StatusCode);
    }

    [Fact]
    public async Task Users_own_quota_overrides_the_default()
    {
        using var app = new NewBieApplication(new() { ["Accounts:Defaults:ImagesPerDay"] = "1" });
        var accounts = app.Service<AccountStore>();
        accounts.AddUser("alice", Roles.User, password: null);
        accounts.UpdateUser("alice", u => u.ImagesPerDay = 2);
        var alice = app.ClientWithKey("alice");
        await alice.SubmitAsync(Small);

        using var second = await alice.PostRawAsync("/v1/jobs", Small);
        using var third = await alice.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
    }

    [Fact]
    public async Task Per_user_steps_pixels_and_count_limits_are_403_naming_the_field()
    {
        using var app = new NewBieApplication();
        var accounts = app.Service<AccountStore>();
        accounts.AddUser("intern", Roles.User, password: null);
        accounts.UpdateUser("intern", u => { u.MaxSteps = 10; u.MaxPixels = 512 * 512; u.MaxCount = 1; });
        var intern = app.ClientWithKey("intern");

        using var steps = await intern.PostRawAsync("/v1/jobs", new { prompt = "x", width = 256, height = 256, steps = 11 });
        using var pixels = await intern.PostRawAsync("/v1/jobs", new { prompt = "x", width = 1024, height = 512, steps = 1 });
        using var count = await intern.PostRawAsync("/v1/jobs", new { prompt = "x", width = 256, height = 256, steps = 1, count = 2 });
        using var fits = await intern.PostRawAsync("/v1/jobs", new { prompt = "x", width = 512, height = 512, steps = 10, count = 1 });

        Assert.Equal("steps", (await steps.ProblemAsync()).Str("field"));
        Assert.Equal("width", (await pixels.ProblemAsync()).Str("field"));
        Assert.Equal("count", (await count.ProblemAsync()).Str("field"));
        Assert.All([steps, pixels, count], r => Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode));
        Assert.Equal(HttpStatusCode.Accepted, fits.StatusCode);
    }

    [Fact]
    public async Task Plain_user_asking_high_priority_is_403_and_admin_granted_class_is_the_default()
    {
        using var app = new NewBieApplication();
        var accounts = app.Service<AccountStore>();
        var alice = app.ClientWithKey("alice");
        accounts.AddUser("vip", Roles.User, password: null);
        accounts.UpdateUser("vip", u => u.PriorityClass = "high");
        var vip = app.ClientWithKey("vip");
        var admin = app.ClientWithKey("boss", Roles.Admin);

        using var refused = await alice.PostRawAsync("/v1/jobs", new { prompt = "x", width = 256, height = 256, steps = 1, priority = "high" });
        var low = (await alice.SubmitAsync(new { prompt = "x", width = 256, height = 256, steps = 1, priority = "low" })).Str("id");
        var vipDefault = (await vip.SubmitAsync(Small)).Str("id");
        var adminHigh = (await admin.SubmitAsync(new { prompt = "x", width = 256, height = 256, steps = 1, priority = "high" })).Str("id");

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("priority", (await refused.ProblemAsync()).Str("field"));
        var jobs = app.Service<NewBie.Host.Jobs.JobStore>();
        Assert.Equal(NewBie.Host.Jobs.JobPriority.Low, jobs.Find(low)!.Priority);
        Assert.Equal(NewBie.Host.Jobs.JobPriority.High, jobs.Find(vipDefault)!.Priority);
        Assert.Equal(NewBie.Host.Jobs.JobPriority.High, jobs.Find(adminHigh)!.Priority);
    }
}
