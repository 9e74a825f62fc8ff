using System.Diagnostics;
using Npgsql;

namespace NewBie.LoadBench;

/// <summary>
/// A throwaway PostgreSQL server for the multi-node bench: Debian's initdb and pg_ctl (as the postgres user when run as
/// root, which they refuse), in a temp folder, on a Unix socket there (no TCP port); stopped and deleted on dispose.
/// </summary>
internal sealed class LocalPostgres : IDisposable
{
    private readonly string _root;
    private readonly string _bin;

    private LocalPostgres(string root, string bin)
    {
        _root = root;
        _bin = bin;
        ServerConnectionString = new NpgsqlConnectionStringBuilder { Host = root, Port = 5432, Username = "postgres", Database = "postgres" }.ConnectionString;
    }

    public string ServerConnectionString { get; }

    public static LocalPostgres Start()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        if (bin is null) throw new InvalidOperationException("PostgreSQL is not installed: apt-get install -y postgresql");
        var root = Directory.CreateTempSubdirectory("newbie-bench-pg-").FullName;
        if (Environment.UserName == "root") Run("chown", "-R", "postgres:postgres", root);
        var server = new LocalPostgres(root, bin);
        var data = Path.Combine(root, "data");
        server.Postgres("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-instructions");
        // Durable as shipped (fsync on): the submit rates below are those of a real server, not of a RAM disk.
        File.AppendAllText(Path.Combine(data, "postgresql.conf"), $"\nlisten_addresses = ''\nunix_socket_directories = '{root}'\nport = 5432\nmax_connections = 300\n");
        server.Postgres("pg_ctl", "-D", data, "-l", Path.Combine(root, "postgres.log"), "-w", "-t", "60", "start");
        return server;
    }

    /// <summary>A new empty database; its connection string.</summary>
    public string CreateDatabase()
    {
        var name = $"bench_{Guid.NewGuid():N}";
        using var admin = NpgsqlDataSource.Create(ServerConnectionString);
        using (var create = admin.CreateCommand($"CREATE DATABASE {name}")) create.ExecuteNonQuery();
        return new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = name, MaxPoolSize = 50 }.ConnectionString;
    }

    public void Dispose()
    {
        try { Postgres("pg_ctl", "-D", Path.Combine(_root, "data"), "-m", "immediate", "-w", "stop"); } catch (InvalidOperationException) { }
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private void Postgres(string tool, params string[] args)
    {
        var path = Path.Combine(_bin, tool);
        if (Environment.UserName == "root") Run("runuser", ["-u", "postgres", "--", path, .. args]);
        else Run(path, args);
    }

    private static void Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {process.ExitCode}: {stdout.Result}{stderr.Result}");
    }
}
