using System.Diagnostics;
using Npgsql;

namespace NewBie.Host.Tests.Storage;

/// <summary>
/// One private PostgreSQL server for the whole test run: <c>initdb</c> in a temp folder (as the <c>postgres</c> user when
/// the tests run as root, since initdb and postgres refuse root), listening only on a Unix socket in that folder (no
/// port to collide with), started on first use and stopped (<c>pg_ctl stop -m immediate</c>) and deleted when the test
/// process exits, even by kill -9. Each test takes a database of its own. Without PostgreSQL the test skips, saying why, unless
/// <c>NEWBIE_REQUIRE_POSTGRES=1</c> (set by .ci/run, which installs Debian's <c>postgresql</c>): then it fails.
/// <para>Usage (the test must be a <c>[SkippableFact]</c> or <c>[SkippableTheory]</c> for the skip to be a skip):</para>
/// <code>
/// [SkippableFact]
/// public async Task Two_nodes_share_one_database()
/// {
///     using var db = PostgresCluster.CreateDatabase();   // a fresh, empty database; dropped on dispose
///     var nodeA = db.NewDataSource();                     // one NpgsqlDataSource per "node", disposed with db
///     // a child server process: "Storage:Provider=postgres", $"ConnectionStrings:Postgres={db.ConnectionString}"
/// }
/// </code>
/// Binaries are looked for in <c>$NEWBIE_POSTGRES_BIN</c>, then on the PATH, then in <c>/usr/lib/postgresql/*/bin</c>
/// (Debian's place, not on the PATH), newest version first.
/// </summary>
public static class PostgresCluster
{
    private const string TempPrefix = "newbie-pg-";
    private static readonly Lazy<Server> Instance = new(Server.Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The folder holding <c>initdb</c>, <c>pg_ctl</c> and <c>postgres</c>; null when PostgreSQL is not installed.</summary>
    public static string? BinDirectory { get; } = FindBinDirectory();

    /// <summary>Why PostgreSQL tests cannot run here, or null when they can.</summary>
    public static string? Missing => BinDirectory is null
        ? "PostgreSQL is not installed (initdb and pg_ctl are neither on the PATH nor in /usr/lib/postgresql/*/bin; apt-get install postgresql, as .ci/run does)"
        : null;

    /// <summary>Skips the calling test when PostgreSQL is missing, or fails it when NEWBIE_REQUIRE_POSTGRES is set.</summary>
    public static void SkipIfMissing()
    {
        if (Missing is not { } why) return;
        Assert.False(Required, $"{why}, and NEWBIE_REQUIRE_POSTGRES is set");
        Skip.If(true, $"{why}; set NEWBIE_REQUIRE_POSTGRES=1 to fail instead");
    }

    private static bool Required => Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_POSTGRES") is { Length: > 0 } and not "0";

    /// <summary>
    /// The server's connection string (database <c>postgres</c>, superuser <c>postgres</c>, trust authentication);
    /// starts the server on first use. Tests should rather take a database of their own: <see cref="CreateDatabase"/>.
    /// </summary>
    public static string ServerConnectionString
    {
        get
        {
            SkipIfMissing();
            return Instance.Value.ConnectionString;
        }
    }

    /// <summary>A new, empty database on the test run's server (starting it on first use); dropped when disposed.</summary>
    public static PostgresTestDatabase CreateDatabase()
    {
        SkipIfMissing();
        var server = Instance.Value;
        var name = $"t_{Guid.NewGuid():N}";
        using (var create = server.Admin.CreateCommand($"CREATE DATABASE {name}")) create.ExecuteNonQuery();
        return new PostgresTestDatabase(server.Admin, new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = name }.ConnectionString, name);
    }

    private static string? FindBinDirectory()
    {
        static bool Has(string dir) => File.Exists(Path.Combine(dir, "initdb")) && File.Exists(Path.Combine(dir, "pg_ctl"));
        if (Environment.GetEnvironmentVariable("NEWBIE_POSTGRES_BIN") is { Length: > 0 } given) return Has(given) ? given : null;
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(Has);
        if (onPath is not null) return onPath;
        const string debian = "/usr/lib/postgresql";
        if (!Directory.Exists(debian)) return null;
        return Directory.GetDirectories(debian)
            .Select(d => (Version: int.TryParse(Path.GetFileName(d), out var v) ? v : -1, Bin: Path.Combine(d, "bin")))
            .Where(d => Has(d.Bin)).OrderByDescending(d => d.Version).Select(d => d.Bin).FirstOrDefault();
    }

    /// <summary>The running server: its folder (data, log, socket) and an admin data source that creates and drops databases.</summary>
    private sealed class Server
    {
        private readonly string _root;
        private readonly string _data;

        private Server(string root)
        {
            _root = root;
            _data = Path.Combine(root, "data");
            ConnectionString = new NpgsqlConnectionStringBuilder
            {
                Host = root, // a folder: Npgsql connects to the Unix socket in it
                Port = Port,
                Username = "postgres",
                Database = "postgres",
                // Many tests hold a few data sources each; the server allows a few hundred connections in all.
                MaxPoolSize = 20,
            }.ConnectionString;
            Admin = NpgsqlDataSource.Create(ConnectionString);
        }

        // Only names the socket file (.s.PGSQL.5432) in the private folder: nothing listens on TCP.
        private const int Port = 5432;

        public string ConnectionString { get; }

        public NpgsqlDataSource Admin { get; }

        public static Server Start()
        {
            RemoveStaleClusters();
            var root = Directory.CreateTempSubdirectory(TempPrefix).FullName;
            // Whose cluster it is: a later run removes it if this process died without stopping it.
            File.WriteAllText(Path.Combine(root, "owner"), Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (AsRoot) Run("chown", "-R", "postgres:postgres", root);
            var server = new Server(root);
            try
            {
                RunPostgres("initdb", "-D", server._data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions");
                // Settings for a throwaway test server: small memory, no durability work (the tests never crash the
                // server itself; they kill app processes), room for the connections of many data sources.
                File.AppendAllText(Path.Combine(server._data, "postgresql.conf"), $"""

                    listen_addresses = ''
                    unix_socket_directories = '{root}'
                    port = {Port}
                    max_connections = 300
                    shared_buffers = 32MB
                    fsync = off
                    synchronous_commit = off
                    full_page_writes = off
                    log_min_messages = warning
                    """);
                RunPostgres("pg_ctl", "-D", server._data, "-l", Path.Combine(root, "postgres.log"), "-w", "-t", "60", "start");
            }
            catch
            {
                server.Stop();
                throw;
            }
            server.Watchdog = Watch(server);
            return server;
        }

        /// <summary>
        /// A shell that waits for the end of its standard input, a pipe only this process holds open: when the test process
        /// exits, however (a normal end, a crash, kill -9), the pipe closes and the shell stops the server and deletes its
        /// folder. (An exit handler would not do: the test runner kills its test host soon after the last test.)
        /// </summary>
        private static Process Watch(Server server)
        {
            const string script = "root=$1; shift; exec >/dev/null 2>&1; cat; \"$@\"; rm -rf -- \"$root\"";
            var pgCtl = Path.Combine(BinDirectory!, "pg_ctl");
            string[] stop = AsRoot ? ["runuser", "-u", "postgres", "--", pgCtl] : [pgCtl];
            var start = new ProcessStartInfo("sh") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in (string[])["-c", script, "sh", server._root, .. stop, "-D", server._data, "-m", "immediate", "-w", "stop"])
                start.ArgumentList.Add(arg);
            return Process.Start(start) ?? throw new InvalidOperationException("could not start the PostgreSQL watchdog (sh)");
        }

        // Held for the life of the process: its standard input is the pipe whose end stops the server.
        private Process? Watchdog { get; set; }

        private void Stop()
        {
            if (File.Exists(Path.Combine(_data, "postmaster.pid")))
            {
                try { RunPostgres("pg_ctl", "-D", _data, "-m", "immediate", "-w", "stop"); }
                catch (InvalidOperationException) { /* already gone */ }
            }
            // The server's last processes may still be removing their files after pg_ctl returns: a few tries, then the
            // next run's RemoveStaleClusters deletes what is left.
            for (var attempt = 0; attempt < 20 && Directory.Exists(_root); attempt++)
            {
                try { Directory.Delete(_root, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Thread.Sleep(50); }
            }
        }

        /// <summary>Clusters of earlier test runs whose process died before stopping them: stopped and deleted.</summary>
        private static void RemoveStaleClusters()
        {
            foreach (var root in Directory.EnumerateDirectories(Path.GetTempPath(), TempPrefix + "*"))
            {
                var owner = Path.Combine(root, "owner");
                if (!File.Exists(owner) || !int.TryParse(File.ReadAllText(owner), out var pid) || IsAlive(pid)) continue;
                new Server(root).Stop();
            }
        }

        private static bool IsAlive(int pid)
        {
            try
            {
                using var process = Process.GetProcessById(pid);
                return !process.HasExited;
            }
            catch (ArgumentException) { return false; }
        }

        private static bool AsRoot => Environment.UserName == "root";

        private static void RunPostgres(string tool, params string[] args)
        {
            var path = Path.Combine(BinDirectory!, tool);
            if (AsRoot) Run("runuser", ["-u", "postgres", "--", path, .. args]);
            else Run(path, args);
        }

        private static void Run(string file, params string[] args)
        {
            var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in args) start.ArgumentList.Add(arg);
            using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {stdout.Result}{stderr.Result}");
        }
    }
}

/// <summary>
/// One test's database on <see cref="PostgresCluster"/>. Dispose drops it (closing every connection to it) after
/// disposing the data sources made by <see cref="NewDataSource"/>.
/// </summary>
public sealed class PostgresTestDatabase(NpgsqlDataSource admin, string connectionString, string name) : IDisposable
{
    private readonly List<NpgsqlDataSource> _sources = [];

    public string Name => name;

    /// <summary>An Npgsql connection string to this database: what <c>ConnectionStrings:Postgres</c> of a server under test is set to.</summary>
    public string ConnectionString => connectionString;

    /// <summary>A data source of its own (what one node has); disposed with the database.</summary>
    public NpgsqlDataSource NewDataSource()
    {
        var source = NpgsqlDataSource.Create(connectionString);
        lock (_sources) _sources.Add(source);
        return source;
    }

    public void Dispose()
    {
        lock (_sources)
        {
            foreach (var source in _sources) source.Dispose();
            _sources.Clear();
        }
        using var drop = admin.CreateCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        drop.ExecuteNonQuery();
    }
}
