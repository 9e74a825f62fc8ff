using Npgsql;

namespace NewBie.Host.Storage;

/// <summary>
/// The <c>storage copy</c> verb: moves a stopped embedded server's data (its data folder's app.db) into an empty
/// PostgreSQL database, for Storage:Provider=postgres. It takes the data folder's lock, as the server does.
/// </summary>
public static class StorageCli
{
    public const string Usage = """
        Usage:
          NewBie storage copy --to "Host=…;Database=…;Username=…;Password=…" [--data-dir DIR]
            Copies users, API keys, usage counters, webhook secrets, studio settings and jobs from the data folder's
            app.db (default: Storage:DataDir, else ./data) into an empty PostgreSQL database (default:
            ConnectionStrings:Postgres). The server must be stopped. Images are not copied (see the output).
        """;

    /// <summary>Exit codes: 0 copied, 1 refused or failed (target not empty, database unreachable), 2 bad command line, 3 data folder in use.</summary>
    public static int Run(string[] args, IConfiguration configuration, TextWriter stdout, TextWriter stderr)
    {
        if (args is not ["copy", .. var rest] || ParseOptions(rest) is not { } options)
            return Fail(stderr, $"{(args is ["copy", ..] ? "Bad options." : "'storage' needs the sub-command 'copy'.")}\n{Usage}", 2);
        var dataDir = options.GetValueOrDefault("data-dir") ?? configuration[$"{StorageOptions.Section}:{nameof(StorageOptions.DataDir)}"] ?? "data";
        if ((options.GetValueOrDefault("to") ?? configuration.GetConnectionString("Postgres")) is not { Length: > 0 } target)
            return Fail(stderr, $"Say where to copy to: --to \"<Npgsql connection string>\".\n{Usage}", 2);

        OpenedStores from;
        try
        {
            from = StorageSetup.OpenDataFolder(dataDir);
        }
        catch (DataDirectoryInUseException e)
        {
            return Fail(stderr, $"{e.Message}\nStop the server first: a running server would go on changing what is being copied.", 3);
        }
        using (from)
        {
            try
            {
                // The same opening as the users and keys verbs: it brings the schema up to date.
                using var to = StorageSetup.OpenPostgres(target);
                if (StorageCopy.WhyNotEmpty(to.Stores) is { } why)
                    return Fail(stderr, $"Refused: the PostgreSQL database '{new NpgsqlConnectionStringBuilder(target).Database}' {why}; nothing was copied. Copy into a new, empty database.", 1);
                var copied = StorageCopy.Copy(from.Stores, to.Stores);
                Report(copied, from.DataDirectory!, stdout);
                return 0;
            }
            catch (StorageConfigurationException e)
            {
                return Fail(stderr, $"--to: {e.Message}", 2);
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
            {
                return Fail(stderr, $"The copy failed: {e.Message}\nIf it stopped half-way, drop and re-create the target database before copying again.", 1);
            }
        }
    }

    private static void Report(CopySummary c, DataDirectory directory, TextWriter stdout)
    {
        stdout.WriteLine($"""
            Copied into PostgreSQL:
              users            {c.Users}
              api keys         {c.Keys}
              usage counters   {c.UsageCounters}
              webhook secrets  {c.WebhookSecrets}
              studio settings  {c.StudioSettings}
              jobs finished    {c.FinishedJobs}
              jobs unfinished  {c.UnfinishedJobs} (queued or running: the first server started with Storage:Provider=postgres queues them again)
            Not copied: the images. Copy the folder {directory.OutputsPath} as it is to the new outputs, keeping its layout:
              a shared folder: cp -a {directory.OutputsPath}/. <the nodes' data folder>/outputs/
              an S3 bucket:    aws s3 sync {directory.OutputsPath} s3://<bucket>/ --endpoint-url <Outputs:S3:ServiceUrl>   (or: mc mirror)
            The data folder itself is unchanged: the embedded server still starts on it.
            """);
    }

    private static Dictionary<string, string>? ParseOptions(string[] args)
    {
        var options = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i += 2)
        {
            if (args[i] is not ("--to" or "--data-dir") || i + 1 >= args.Length || !options.TryAdd(args[i][2..], args[i + 1])) return null;
        }
        return options;
    }

    private static int Fail(TextWriter stderr, string message, int code)
    {
        stderr.WriteLine(message);
        return code;
    }
}
