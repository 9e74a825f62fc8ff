using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Storage;

namespace NewBie.Host.Tests.Accounts;

/// <summary>
/// Keys and their users, each test with users of its own (none relies on the absence of users): one server for the
/// class. What a server with no users does, and that only real loopback gets it, is in <see cref="LoopbackAuthenticationTests"/>.
/// </summary>
public sealed class AuthenticationTests(AuthenticationTests.App fixture) : IClassFixture<AuthenticationTests.App>
{
    public sealed class App : IDisposable
    {
        public NewBieApplication Server { get; } = new();

        public void Dispose() => Server.Dispose();
    }

    internal static readonly object Small = new { prompt = "x", width = 256, height = 256, steps = 1 };
    private readonly NewBieApplication _app = fixture.Server;

    [Fact]
    public async Task Key_lifecycle_create_use_revoke_then_401()
    {
        var key = _app.KeyFor("lifecycle");
        var client = _app.ClientWithBearer(key);
        using var before = await client.GetAsync("/v1/jobs");
        var id = ApiKeys.IdOf(key)!;

        Assert.True(_app.Service<AccountStore>().RevokeKey("lifecycle", id));
        using var after = await client.GetAsync("/v1/jobs");

        Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
        Assert.Equal("unauthorized", (await after.ProblemAsync()).Str("code"));
        Assert.Equal("Bearer", after.Headers.WwwAuthenticate.Single().Scheme);
    }

    [Fact]
    public async Task Keys_are_nb_prefixed_with_256_random_bits_and_record_their_last_use()
    {
        var key = _app.KeyFor("prefixed");
        var other = _app.KeyFor("prefixed");
        var accounts = _app.Service<AccountStore>();
        Assert.Null(accounts.Keys("prefixed")[0].LastUsedAt);

        using var response = await _app.ClientWithBearer(key).GetAsync("/v1/jobs");

        Assert.StartsWith("nb_", key, StringComparison.Ordinal);
        Assert.NotEqual(key, other);
        var secret = Secret(key);
        Assert.True(secret.Length * 6 >= 256, $"secret {secret} is under 256 bits");
        Assert.Equal(_app.Time.GetUtcNow().UtcDateTime, accounts.Keys("prefixed").Single(k => k.Id == ApiKeys.IdOf(key)).LastUsedAt);
        Assert.Null(accounts.Keys("prefixed").Single(k => k.Id == ApiKeys.IdOf(other)).LastUsedAt);
    }

    [Theory]
    [InlineData("tampered")]
    [InlineData("not-a-key")]
    [InlineData("")]
    public async Task Tampered_or_malformed_key_is_401_even_from_loopback(string key)
    {
        var real = _app.KeyFor("tampered");
        var forged = key == "tampered" ? $"{real[..^4]}AAAA" : key;
        var client = _app.CreateClient();
        client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", $"Bearer {forged}");

        using var response = await client.GetAsync("/v1/jobs");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public void Database_file_holds_only_the_keys_hash_never_the_key()
    {
        var folder = Directory.CreateTempSubdirectory("newbie-keys-").FullName;
        try
        {
            string key;
            byte[] hash;
            using (var directory = new DataDirectory(Options.Create(new StorageOptions { DataDir = folder })))
            using (var database = new AppDatabase(directory))
            {
                var accounts = new AccountStore(new LiteDbUserStore(database), new LiteDbUsageStore(database), Options.Create(new AccountsOptions()), TimeProvider.System);
                accounts.AddUser("alice", Roles.User, password: null);
                (key, var record) = accounts.CreateKey("alice", "laptop");
                hash = record.Hash;
            }
            var bytes = Directory.EnumerateFiles(folder, "*.db").SelectMany(File.ReadAllBytes).ToArray();
            var secret = Secret(key);

            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(secret)));
            Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.Unicode.GetBytes(secret)));
            Assert.NotEqual(-1, bytes.AsSpan().IndexOf(hash));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Non_loopback_request_with_a_key_is_served_as_its_user()
    {
        var key = _app.KeyFor("lan");

        var context = await FromLan(_app, "/v1/jobs", key);

        Assert.Equal(StatusCodes.Status200OK, context.Response.StatusCode);
    }

    [Fact]
    public async Task X_user_header_no_longer_chooses_the_user()
    {
        var alice = _app.ClientWithKey("xuser-alice");
        var id = (await alice.SubmitAsync(Small)).Str("id");
        var bob = _app.ClientWithKey("xuser-bob");
        bob.DefaultRequestHeaders.Add("X-User", "xuser-alice");

        using var response = await bob.GetAsync($"/v1/jobs/{id}");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    /// <summary>The part after nb_ID_ (the secret may itself hold '_').</summary>
    private static string Secret(string key) => key["nb_0123456789ab_".Length..];

    /// <summary>A request that the server sees as coming from 192.168.1.50, with an optional key.</summary>
    internal static async Task<HttpContext> FromLan(NewBieApplication app, string path, string? key = null, params (string Name, string Value)[] headers)
    {
        _ = app.Services;
        return await app.Server.SendAsync(c =>
        {
            c.Connection.RemoteIpAddress = IPAddress.Parse("192.168.1.50");
            c.Request.Method = "GET";
            c.Request.Path = path;
            if (key is not null) c.Request.Headers.Authorization = $"Bearer {key}";
            foreach (var (name, value) in headers) c.Request.Headers[name] = value;
        });
    }
}

/// <summary>What a server with no users grants to loopback, and that nothing else gets it: a fresh server per test.</summary>
public sealed class LoopbackAuthenticationTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Loopback_with_no_users_acts_as_the_local_admin()
    {
        var client = _app.CreateClient();

        var id = (await client.SubmitAsync(AuthenticationTests.Small)).Str("id");
        using var admin = await client.GetAsync("/v1/admin/users");

        Assert.Equal("local", _app.Service<NewBie.Host.Jobs.JobStore>().Find(id)!.UserId);
        Assert.Equal(HttpStatusCode.OK, admin.StatusCode);
    }

    [Fact]
    public async Task Loopback_without_a_key_is_401_once_a_user_exists()
    {
        _app.Service<AccountStore>().AddUser("alice", Roles.Admin, password: null);

        using var response = await _app.CreateClient().GetAsync("/v1/jobs");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task Non_loopback_request_without_a_key_is_401_problem_with_bearer_challenge()
    {
        var context = await AuthenticationTests.FromLan(_app, "/v1/jobs");

        Assert.Equal(StatusCodes.Status401Unauthorized, context.Response.StatusCode);
        Assert.Equal("Bearer", context.Response.Headers.WWWAuthenticate.ToString());
        Assert.Equal("application/problem+json", context.Response.ContentType);
        var problem = await JsonSerializer.DeserializeAsync<JsonElement>(context.Response.Body);
        Assert.Equal("unauthorized", problem.Str("code"));
    }

    [Fact]
    public async Task Forwarded_for_header_does_not_make_a_lan_request_loopback()
    {
        var context = await AuthenticationTests.FromLan(_app, "/v1/jobs", headers: ("X-Forwarded-For", "127.0.0.1"));

        Assert.Equal(StatusCodes.Status401Unauthorized, context.Response.StatusCode);
    }

    [Theory]
    [InlineData("Forwarded", "for=192.168.1.50")]
    [InlineData("X-Forwarded-For", "192.168.1.50")]
    [InlineData("X-Forwarded-Host", "newbie.example")]
    [InlineData("X-Forwarded-Proto", "https")]
    public async Task Loopback_request_that_came_through_a_proxy_is_not_the_local_admin(string header, string value)
    {
        var client = _app.CreateClient();
        client.DefaultRequestHeaders.Add(header, value);

        using var response = await client.GetAsync("/v1/jobs");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}
