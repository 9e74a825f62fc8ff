using Microsoft.Extensions.Options;
using Npgsql;
using NewBie.Host.Storage;

namespace NewBie.Host.Accounts;

/// <summary>
/// The <c>users</c> and <c>keys</c> verbs, on the stores serve would use (<see cref="StorageSetup.OpenStores"/>): a
/// stopped embedded server's data folder (they take its lock, as the server does), or with Storage:Provider=postgres
/// the shared PostgreSQL database, whether nodes run or not. <c>keys create</c> prints the new key alone on the last
/// line of stdout, for scripts.
/// </summary>
public static class AccountsCli
{
    public const string Usage = """
        Usage:
          NewBie users add NAME [--admin] [--password P] STORE
          NewBie users list STORE
          NewBie users set NAME [--role admin|user] [--password P] [--priority high|normal|low] [--max-queued N]
                                [--images-per-day N] [--max-pixels N] [--max-steps N] [--max-count N] STORE
          NewBie users remove NAME STORE
          NewBie keys create NAME [--name KEYNAME] STORE
          NewBie keys list NAME STORE
          NewBie keys revoke NAME KEYID STORE
        STORE is where serve keeps its data (default: appsettings.json and the environment, as serve reads them):
          --data-dir DIR                      the embedded mode: a stopped server's data folder (default ./data)
          --Storage:Provider postgres --ConnectionStrings:Postgres "Host=…;Database=…;Username=…;Password=…"
                                              the nodes' PostgreSQL database: works while they run
        """;

    /// <summary>
    /// Exit codes: 0 done, 1 refused (unknown user, bad value) or the database failed, 2 bad command line or storage
    /// settings, 3 data folder in use. <paramref name="configuration"/> is what serve would read besides its command
    /// line; <c>--Section:Key value</c> options of <paramref name="args"/> override it, as on serve's command line.
    /// </summary>
    public static int Run(string verb, string[] args, IConfiguration configuration, TextWriter stdout, TextWriter stderr)
    {
        var (positional, options, flags, settings, parseError) = Parse(args);
        if (parseError is not null || positional.Count == 0) return Fail(stderr, parseError ?? $"'{verb}' needs a sub-command.", 2);
        if (options.GetValueOrDefault("data-dir") is { } dataDir) settings[$"{StorageOptions.Section}:{nameof(StorageOptions.DataDir)}"] = dataDir;
        var effective = new ConfigurationBuilder().AddConfiguration(configuration).AddInMemoryCollection(settings).Build();

        OpenedStores opened;
        try
        {
            opened = StorageSetup.OpenStores(effective);
        }
        catch (DataDirectoryInUseException e)
        {
            return Fail(stderr, $"{e.Message}\nA server is running on this folder: manage users and keys through its admin API (/v1/admin/users) instead.", 3);
        }
        catch (StorageConfigurationException e)
        {
            return Fail(stderr, e.Message, 2);
        }
        catch (NpgsqlException e)
        {
            return Fail(stderr, $"Could not open the PostgreSQL database of ConnectionStrings:Postgres: {e.Message}", 1);
        }
        using (opened)
        {
            var accounts = new AccountStore(opened.Stores.Users, opened.Stores.Usage, Options.Create(new AccountsOptions()), TimeProvider.System);
            try
            {
                return (verb, positional[0]) switch
                {
                    ("users", "add") when positional.Count == 2 => AddUser(accounts, positional[1], flags.Contains("admin"), options.GetValueOrDefault("password"), stdout),
                    ("users", "list") => ListUsers(accounts, stdout),
                    ("users", "set") when positional.Count == 2 => SetUser(accounts, positional[1], options, stdout),
                    ("users", "remove") when positional.Count == 2 => accounts.RemoveUser(positional[1])
                        ? Done(stdout, $"Removed user {positional[1]} and their keys.") : Fail(stderr, $"No user '{positional[1]}'.", 1),
                    ("keys", "create") when positional.Count == 2 => CreateKey(accounts, positional[1], options.GetValueOrDefault("name"), stdout),
                    ("keys", "list") when positional.Count == 2 => ListKeys(accounts, positional[1], stdout, stderr),
                    ("keys", "revoke") when positional.Count == 3 => accounts.RevokeKey(positional[1], positional[2])
                        ? Done(stdout, $"Revoked key {positional[2]} of {positional[1]}.") : Fail(stderr, $"No active key '{positional[2]}' of user '{positional[1]}'.", 1),
                    _ => Fail(stderr, $"Unknown command: {verb} {string.Join(' ', positional)}", 2),
                };
            }
            catch (AccountException e)
            {
                return Fail(stderr, e.Message, 1);
            }
            catch (NpgsqlException e)
            {
                // Each change is one transaction: a failed one changed nothing.
                return Fail(stderr, $"{opened.Description} failed: {e.Message}; nothing was changed.", 1);
            }
        }
    }

    private static int AddUser(AccountStore accounts, string name, bool admin, string? password, TextWriter stdout)
    {
        var user = accounts.AddUser(name, admin ? Roles.Admin : Roles.User, password);
        return Done(stdout, $"Added {user.Role} {user.Name}{(password is null ? " (no password: API keys only)" : "")}.");
    }

    private static int ListUsers(AccountStore accounts, TextWriter stdout)
    {
        foreach (var u in accounts.Users())
            stdout.WriteLine($"{u.Name}\t{u.Role}\tpriority={u.PriorityClass ?? "default"}\tmax_queued={Show(u.MaxQueuedJobs)}\timages_per_day={Show(u.ImagesPerDay)}" +
                $"\tmax_pixels={Show(u.MaxPixels)}\tmax_steps={Show(u.MaxSteps)}\tmax_count={Show(u.MaxCount)}\tkeys={accounts.Keys(u.Name).Count(k => k.RevokedAt is null)}");
        return 0;
    }

    private static int SetUser(AccountStore accounts, string name, Dictionary<string, string> o, TextWriter stdout)
    {
        var change = new AccountsAdminApi.UserChange(null, o.GetValueOrDefault("role"), o.GetValueOrDefault("password"), o.GetValueOrDefault("priority"),
            Int(o, "max-queued"), Int(o, "images-per-day"), Int(o, "max-pixels"), Int(o, "max-steps"), Int(o, "max-count"));
        accounts.UpdateUser(name, u => AccountsAdminApi.Apply(u, change, accounts));
        return Done(stdout, $"Updated user {name}.");
    }

    private static int CreateKey(AccountStore accounts, string user, string? keyName, TextWriter stdout)
    {
        var (key, record) = accounts.CreateKey(user, keyName);
        stdout.WriteLine($"Created key '{record.Name}' (id {record.Id}) for {user}. It is shown only now:");
        stdout.WriteLine(key);
        return 0;
    }

    private static int ListKeys(AccountStore accounts, string user, TextWriter stdout, TextWriter stderr)
    {
        if (accounts.FindUser(user) is null) return Fail(stderr, $"No user '{user}'.", 1);
        foreach (var k in accounts.Keys(user))
            stdout.WriteLine($"{k.Id}\t{k.Name}\tcreated={k.CreatedAt:u}\tlast_used={(k.LastUsedAt is { } t ? t.ToString("u") : "never")}" +
                (k.RevokedAt is { } r ? $"\trevoked={r:u}" : ""));
        return 0;
    }

    private static (List<string> Positional, Dictionary<string, string> Options, HashSet<string> Flags, Dictionary<string, string?> Settings, string? Error) Parse(string[] args)
    {
        string[] valued = ["data-dir", "password", "name", "role", "priority", "max-queued", "images-per-day", "max-pixels", "max-steps", "max-count"];
        string[] flagNames = ["admin"];
        var positional = new List<string>();
        var options = new Dictionary<string, string>();
        var flags = new HashSet<string>();
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                positional.Add(args[i]);
                continue;
            }
            var name = args[i][2..];
            // A configuration key (--Storage:Provider postgres), as serve's command line takes it.
            var setting = name.Contains(':', StringComparison.Ordinal);
            if (flagNames.Contains(name)) flags.Add(name);
            else if (!valued.Contains(name) && !setting) return (positional, options, flags, settings, $"Unknown option --{name}.");
            else if (i + 1 >= args.Length) return (positional, options, flags, settings, $"--{name} needs a value.");
            else if (setting) settings[name] = args[++i];
            else options[name] = args[++i];
        }
        return (positional, options, flags, settings, null);
    }

    private static int? Int(Dictionary<string, string> options, string name) =>
        options.TryGetValue(name, out var text)
            ? int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value)
                ? value : throw new AccountException($"--{name} must be a whole number.")
            : null;

    private static string Show(int? value) => value?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default";

    private static int Done(TextWriter stdout, string message)
    {
        stdout.WriteLine(message);
        return 0;
    }

    private static int Fail(TextWriter stderr, string message, int code)
    {
        stderr.WriteLine(message);
        if (code == 2) stderr.WriteLine(Usage);
        return code;
    }
}
