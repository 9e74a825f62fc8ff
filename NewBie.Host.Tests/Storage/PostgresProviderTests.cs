using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Jobs;
using NewBie.Host.Storage.Postgres;

namespace NewBie.Host.Tests.Storage;

/// <summary>Storage:Provider chooses where the app's data lives; the server checks the choice before it starts.</summary>
public sealed class PostgresProviderTests
{
    [SkippableFact]
    public async Task With_postgres_the_servers_jobs_and_accounts_are_rows_of_the_database()
    {
        using var db = PostgresCluster.CreateDatabase();
        using var app = new NewBieApplication(new() { ["Storage:Provider"] = "postgres", ["ConnectionStrings:Postgres"] = db.ConnectionString });
        var client = app.ClientFor("alice");

        var submitted = await client.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 2 }, idempotencyKey: "k1");
        var id = submitted.Str("id");
        await client.WaitForStatusAsync(id, "succeeded");

        Assert.IsType<PostgresJobRecords>(app.Service<IJobRecords>());
        Assert.IsType<PostgresUserStore>(app.Service<IUserStore>());
        var source = db.NewDataSource();
        using (var job = source.CreateCommand("SELECT user_id, status, idempotency_key, finished_at IS NOT NULL FROM newbie_jobs WHERE id = $1"))
        {
            job.Parameters.Add(new Npgsql.NpgsqlParameter { Value = id });
            using var row = job.ExecuteReader();
            Assert.True(row.Read(), "the job is a row of newbie_jobs");
            Assert.Equal(("alice", "Succeeded", "k1", true), (row.GetString(0), row.GetString(1), row.GetString(2), row.GetBoolean(3)));
        }
        using (var users = source.CreateCommand("SELECT count(*) FROM newbie_users WHERE name = 'alice'")) Assert.Equal(1L, users.ExecuteScalar());
        using (var keys = source.CreateCommand("SELECT count(*) FROM newbie_api_keys WHERE user_name = 'alice'")) Assert.Equal(1L, keys.ExecuteScalar());
    }

    [Fact]
    public void An_unknown_provider_stops_the_start_and_says_which_are_known()
    {
        using var app = new NewBieApplication(new() { ["Storage:Provider"] = "mongodb" });
        var error = Assert.Throws<OptionsValidationException>(() => app.CreateClient());
        Assert.Contains("Storage:Provider must be litedb (the default) or postgres", error.Message);
    }

    [Fact]
    public void Postgres_without_a_connection_string_stops_the_start_and_names_the_setting()
    {
        using var app = new NewBieApplication(new() { ["Storage:Provider"] = "postgres" });
        var error = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains("ConnectionStrings:Postgres", error.Message);
    }
}
