using System.Net.Http.Headers;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests;

/// <summary>Users and keys made straight through the store, and clients that send them.</summary>
public static class TestAccounts
{
    /// <summary>Limits far above what any test reaches, so that only the tests about limits meet them (they set their own).</summary>
    public static readonly IReadOnlyDictionary<string, string?> GenerousLimits = new Dictionary<string, string?>
    {
        ["Accounts:RateLimits:KeyBurst"] = "100000",
        ["Accounts:RateLimits:GlobalPerSecond"] = "100000",
        ["Accounts:RateLimits:GlobalPerHour"] = "100000",
        ["Accounts:RateLimits:AnonymousPerIpPerMinute"] = "100000",
        ["Accounts:Defaults:MaxQueuedJobs"] = "100000",
        ["Accounts:Defaults:ImagesPerDay"] = "100000",
    };

    /// <summary>A new API key of <paramref name="user"/>, creating the user (with <paramref name="role"/>) when missing.</summary>
    public static string KeyFor(this NewBieApplication app, string user, string role = Roles.User)
    {
        var accounts = app.Service<AccountStore>();
        if (accounts.FindUser(user) is null) accounts.AddUser(user, role, password: null);
        return accounts.CreateKey(user, "test").Key;
    }

    public static HttpClient ClientWithKey(this NewBieApplication app, string user, string role = Roles.User) => app.ClientWithBearer(app.KeyFor(user, role));

    /// <summary>A client with an API key of the admin "ops" (readiness details, metrics, admin routes).</summary>
    public static HttpClient AdminClient(this NewBieApplication app) => app.ClientWithKey("ops", Roles.Admin);

    /// <summary>The client with <paramref name="token"/> as its bearer credential (a scrape token, a key).</summary>
    public static HttpClient WithBearer(this HttpClient client, string token)
    {
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static HttpClient ClientWithBearer(this NewBieApplication app, string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}
