using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Accounts;

public sealed class AdminApiTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Admin_creates_a_user_and_key_that_works_then_revokes_it()
    {
        var admin = _app.ClientWithKey("boss", Roles.Admin);

        using var created = await admin.PostAsJsonAsync("/v1/admin/users", new { name = "alice", max_steps = 20 });
        using var keyResponse = await admin.PostAsJsonAsync("/v1/admin/users/alice/keys", new { name = "laptop" });
        var key = await keyResponse.Content.ReadFromJsonAsync<JsonElement>();
        var alice = _app.ClientWithBearer(key.Str("key"));
        using var used = await alice.GetAsync("/v1/jobs");
        var keys = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/users/alice/keys");
        using var revoked = await admin.DeleteAsync($"/v1/admin/users/alice/keys/{key.Str("id")}");
        using var afterRevoke = await alice.GetAsync("/v1/jobs");

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(20, (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("max_steps").GetInt32());
        Assert.Equal(HttpStatusCode.Created, keyResponse.StatusCode);
        Assert.Equal(HttpStatusCode.OK, used.StatusCode);
        var listed = Assert.Single(keys.EnumerateArray());
        Assert.Equal("laptop", listed.Str("name"));
        Assert.False(listed.TryGetProperty("key", out _));
        Assert.False(listed.TryGetProperty("hash", out _));
        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, afterRevoke.StatusCode);
    }

    [Fact]
    public async Task Admin_changes_a_users_limits_and_removes_the_user()
    {
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var alice = _app.ClientWithKey("alice");

        using var changed = await admin.PatchAsJsonAsync("/v1/admin/users/alice", new { priority_class = "high", images_per_day = 7 });
        using var bad = await admin.PatchAsJsonAsync("/v1/admin/users/alice", new { priority_class = "urgent" });
        var user = _app.Service<AccountStore>().FindUser("alice")!;
        using var removed = await admin.DeleteAsync("/v1/admin/users/alice");
        using var afterRemove = await alice.GetAsync("/v1/jobs");

        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        Assert.Equal(("high", 7), (user.PriorityClass, user.ImagesPerDay));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, afterRemove.StatusCode);
    }

    [Fact]
    public async Task Plain_user_is_403_on_admin_routes()
    {
        var alice = _app.ClientWithKey("alice");

        using var response = await alice.GetAsync("/v1/admin/users");

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("forbidden", (await response.ProblemAsync()).Str("code"));
    }

    [Fact]
    public async Task Usage_reports_images_and_gpu_seconds_per_user_and_day()
    {
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var alice = _app.ClientWithKey("alice");
        var id = (await alice.SubmitAsync(new { prompt = "x", width = 256, height = 256, steps = 1, count = 2 })).Str("id");
        await alice.WaitForStatusAsync(id, "succeeded");

        var usage = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/usage");

        var row = Assert.Single(usage.EnumerateArray());
        Assert.Equal(("alice", "2026-01-01", 2, 2), (row.Str("user"), row.Str("day"), row.GetProperty("images_requested").GetInt32(), row.GetProperty("images_generated").GetInt32()));
        Assert.True(row.GetProperty("gpu_seconds").GetDouble() >= 0);
    }

    [Fact]
    public async Task Password_login_sets_a_cookie_that_opens_admin_routes()
    {
        var accounts = _app.Service<AccountStore>();
        accounts.AddUser("boss", Roles.Admin, "correct horse");
        accounts.AddUser("alice", Roles.User, "alice's password");
        var client = _app.CreateClient();

        using var before = await client.GetAsync("/v1/admin/users");
        using var wrong = await client.PostAsJsonAsync("/v1/auth/login", new { username = "boss", password = "wrong horse" });
        using var login = await client.PostAsJsonAsync("/v1/auth/login", new { username = "boss", password = "correct horse" });
        using var after = await client.GetAsync("/v1/admin/users");
        var userClient = _app.CreateClient();
        using var userLogin = await userClient.PostAsJsonAsync("/v1/auth/login", new { username = "alice", password = "alice's password" });
        using var userAdmin = await userClient.GetAsync("/v1/admin/users");
        using var userJobs = await userClient.GetAsync("/v1/jobs");
        using var logout = await client.PostAsync("/v1/auth/logout", null);
        using var afterLogout = await client.GetAsync("/v1/admin/users");

        Assert.Equal(HttpStatusCode.Unauthorized, before.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Equal(HttpStatusCode.OK, userLogin.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, userAdmin.StatusCode);
        Assert.Equal(HttpStatusCode.OK, userJobs.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, afterLogout.StatusCode);
    }

    [Fact]
    public void Passwords_are_stored_as_slow_kdf_hashes()
    {
        var user = _app.Service<AccountStore>().AddUser("boss", Roles.Admin, "correct horse");

        Assert.DoesNotContain("correct horse", user.PasswordHash!, StringComparison.Ordinal);
        // ASP.NET Core Identity v3 format: PBKDF2 with HMAC-SHA512 and 100 000 iterations.
        Assert.Equal(0x01, Convert.FromBase64String(user.PasswordHash!)[0]);
        Assert.NotNull(_app.Service<AccountStore>().CheckPassword("boss", "correct horse"));
        Assert.Null(_app.Service<AccountStore>().CheckPassword("boss", "correct horsE"));
    }
}
