using Npgsql;

namespace NewBie.Host.Tests.Storage;

public sealed class PostgresClusterTests
{
    [SkippableFact]
    public void Each_test_database_starts_empty_and_is_dropped_on_dispose()
    {
        string name;
        using (var db = PostgresCluster.CreateDatabase())
        {
            name = db.Name;
            var source = db.NewDataSource();
            using (var tables = source.CreateCommand("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
                Assert.Equal(0L, (long)tables.ExecuteScalar()!);
            using (var create = source.CreateCommand("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")) create.ExecuteNonQuery();
            // A second database of the same server sees nothing of the first.
            using var other = PostgresCluster.CreateDatabase();
            using var otherTables = other.NewDataSource().CreateCommand("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'");
            Assert.Equal(0L, (long)otherTables.ExecuteScalar()!);
        }

        using var admin = NpgsqlDataSource.Create(PostgresCluster.ServerConnectionString);
        using var exists = admin.CreateCommand("SELECT count(*) FROM pg_database WHERE datname = $1");
        exists.Parameters.Add(new NpgsqlParameter { Value = name });
        Assert.Equal(0L, (long)exists.ExecuteScalar()!);
    }

    [SkippableFact]
    public void The_connection_string_reaches_the_server_over_its_private_socket()
    {
        using var db = PostgresCluster.CreateDatabase();
        var builder = new NpgsqlConnectionStringBuilder(db.ConnectionString);
        Assert.True(Path.IsPathRooted(builder.Host), $"Host is {builder.Host}: a socket folder, no TCP port");
        using var connection = new NpgsqlConnection(db.ConnectionString);
        connection.Open();
        using var version = new NpgsqlCommand("SHOW server_version_num", connection);
        Assert.True(int.Parse((string)version.ExecuteScalar()!, System.Globalization.CultureInfo.InvariantCulture) >= 130000, "DROP DATABASE … WITH (FORCE) needs PostgreSQL 13 or later");
    }
}
