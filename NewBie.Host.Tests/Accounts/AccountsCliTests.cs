using System.Net;
using Microsoft.Extensions.Configuration;
using NewBie.Host.Accounts;
using NewBie.Host.Storage.Postgres;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Accounts;

/// <summary>
/// The <c>users</c> and <c>keys</c> verbs, the very same tests on either store (<see cref="OnLiteDb"/>: a data folder;
/// <see cref="OnPostgres"/>: a database of the test run's PostgreSQL server), plus what only one of them does.
/// </summary>
public abstract class AccountsCliTests : IDisposable
{
    /// <summary>The verb's options that name the store.</summary>
    protected abstract string[] Store { get; }

    /// <summary>A server on the same store (not started until first used).</summary>
    protected abstract NewBieApplication Server { get; }

    public abstract void Dispose();

    [SkippableFact]
    public async Task Users_add_and_keys_create_print_a_key_the_server_then_accepts()
    {
        var (addCode, _, addError) = Run(["users", "add", "alice", "--admin", "--password", "correct horse", .. Store]);
        var (keyCode, output, _) = Run(["keys", "create", "alice", "--name", "ci", .. Store]);
        var key = output.TrimEnd().Split('\n')[^1];

        using var response = await Server.ClientWithBearer(key).GetAsync("/v1/admin/users");

        Assert.True((addCode, keyCode) == (0, 0), addError);
        Assert.StartsWith("nb_", key, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [SkippableFact]
    public void Users_set_list_remove_and_keys_list_revoke_work_on_the_store()
    {
        Run(["users", "add", "alice", .. Store]);
        var (_, created, _) = Run(["keys", "create", "alice", .. Store]);
        var id = ApiKeys.IdOf(created.TrimEnd().Split('\n')[^1])!;

        var set = Run(["users", "set", "alice", "--priority", "low", "--images-per-day", "9", .. Store]);
        var users = Run(["users", "list", .. Store]);
        var revoke = Run(["keys", "revoke", "alice", id, .. Store]);
        var keys = Run(["keys", "list", "alice", .. Store]);
        var remove = Run(["users", "remove", "alice", .. Store]);
        var after = Run(["users", "list", .. Store]);

        Assert.Equal(0, set.Code);
        Assert.Contains("alice\tuser\tpriority=low", users.Out, StringComparison.Ordinal);
        Assert.Contains("images_per_day=9", users.Out, StringComparison.Ordinal);
        Assert.Equal(0, revoke.Code);
        Assert.Contains($"{id}\tdefault", keys.Out, StringComparison.Ordinal);
        Assert.Contains("revoked=", keys.Out, StringComparison.Ordinal);
        Assert.Equal(0, remove.Code);
        Assert.Equal("", after.Out);
    }

    [SkippableTheory]
    [InlineData("users", "set", "nobody", "--max-steps", "5")]
    [InlineData("users", "set", "alice", "--priority", "urgent")]
    [InlineData("users", "add", "../etc")]
    [InlineData("users", "add", "alice")]
    [InlineData("keys", "create", "nobody")]
    [InlineData("keys", "revoke", "alice", "000000000000")]
    public void Refused_commands_exit_1_with_a_message(params string[] args)
    {
        Run(["users", "add", "alice", .. Store]);

        var (code, _, error) = Run([.. args, .. Store]);

        Assert.Equal(1, code);
        Assert.NotEqual("", error.Trim());
    }

    [SkippableFact]
    public void Unknown_option_exits_2_with_usage()
    {
        var (code, _, error) = Run(["users", "add", "alice", "--colour", "red", .. Store]);

        Assert.Equal(2, code);
        Assert.Contains("Usage:", error, StringComparison.Ordinal);
    }

    /// <summary>Runs a verb with no settings but its command line (the test process's environment is not read).</summary>
    protected static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = AccountsCli.Run(args[0], args[1..], new ConfigurationBuilder().Build(), stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    public sealed class OnLiteDb : AccountsCliTests
    {
        private readonly NewBieApplication _app = new();

        protected override string[] Store => ["--data-dir", _app.DataDir];

        protected override NewBieApplication Server => _app;

        public override void Dispose() => _app.Dispose();

        [Fact]
        public void Running_server_holds_the_data_folder_and_the_verb_points_to_the_admin_api()
        {
            _ = _app.Services;

            var (code, _, error) = Run(["users", "add", "alice", .. Store]);

            Assert.Equal(3, code);
            Assert.Contains("/v1/admin/users", error, StringComparison.Ordinal);
        }

        [Fact]
        public void An_unknown_provider_exits_2_naming_the_known_ones()
        {
            var (code, _, error) = Run(["users", "list", "--Storage:Provider", "mongodb", .. Store]);

            Assert.Equal(2, code);
            Assert.Contains("litedb (the default) or postgres", error, StringComparison.Ordinal);
        }
    }

    public sealed class OnPostgres : AccountsCliTests
    {
        private readonly Lazy<PostgresTestDatabase> _db = new(PostgresCluster.CreateDatabase);
        private readonly Lazy<NewBieApplication> _server;

        public OnPostgres() =>
            _server = new(() => new NewBieApplication(new() { ["Storage:Provider"] = "postgres", ["ConnectionStrings:Postgres"] = _db.Value.ConnectionString }));

        // Made inside the test (first use), so that a missing PostgreSQL skips it instead of failing its construction.
        protected override string[] Store => ["--Storage:Provider", "postgres", "--ConnectionStrings:Postgres", _db.Value.ConnectionString];

        protected override NewBieApplication Server => _server.Value;

        public override void Dispose()
        {
            if (_server.IsValueCreated) _server.Value.Dispose();
            if (_db.IsValueCreated) _db.Value.Dispose();
        }

        [SkippableFact]
        public async Task While_a_node_runs_on_the_database_the_verbs_change_its_accounts_at_once_without_its_data_folder_lock()
        {
            var ops = Server.AdminClient(); // the node is running
            // Even the running node's own data folder: with PostgreSQL the verbs leave it alone.
            string[] store = [.. Store, "--data-dir", Server.DataDir];

            var add = Run(["users", "add", "bob", .. store]);
            var created = Run(["keys", "create", "bob", .. store]);
            var key = created.Out.TrimEnd().Split('\n')[^1];
            using var before = await Server.ClientWithBearer(key).GetAsync("/v1/jobs");
            var revoke = Run(["keys", "revoke", "bob", ApiKeys.IdOf(key)!, .. store]);
            using var after = await Server.ClientWithBearer(key).GetAsync("/v1/jobs");
            using var listed = await ops.GetAsync("/v1/admin/users/bob");

            Assert.True((add.Code, created.Code, revoke.Code) == (0, 0, 0), add.Err + created.Err + revoke.Err);
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, after.StatusCode);
            Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
        }

        [SkippableFact]
        public void The_first_verb_on_a_fresh_database_creates_the_tables()
        {
            var (code, output, error) = Run(["users", "list", .. Store]);

            Assert.True(code == 0, error);
            Assert.Equal("", output);
            using var version = _db.Value.NewDataSource().CreateCommand("SELECT max(version) FROM newbie_schema_version");
            Assert.Equal(PostgresSchema.Latest, version.ExecuteScalar());
        }

        [Fact]
        public void Postgres_without_a_connection_string_exits_2_naming_the_setting()
        {
            var (code, _, error) = Run("users", "list", "--Storage:Provider", "postgres");

            Assert.Equal(2, code);
            Assert.Contains("ConnectionStrings:Postgres", error, StringComparison.Ordinal);
        }

        [Fact]
        public void A_database_that_does_not_answer_exits_1_and_says_so()
        {
            var nowhere = Directory.CreateTempSubdirectory("newbie-nopg-").FullName;
            try
            {
                var (code, _, error) = Run("users", "list", "--Storage:Provider", "postgres", "--ConnectionStrings:Postgres", $"Host={nowhere};Database=x;Username=x;Timeout=2");

                Assert.Equal(1, code);
                Assert.Contains("Could not open the PostgreSQL database", error, StringComparison.Ordinal);
            }
            finally
            {
                Directory.Delete(nowhere);
            }
        }
    }
}
