using System.Text;

namespace NewBie.LoadBench;

/// <summary>Markdown sections of BENCHMARKS.md, each between its own markers so that one scenario can be re-run alone.</summary>
internal static class Report
{
    private static readonly Dictionary<string, (string Title, string Args)> Sections = new()
    {
        ["seed"] = ("Load: the seed's table (concurrent submitters → accepted, refused, lost, latency)", "seed"),
        ["throughput"] = ("Load: API throughput (status reads/s, durable submits/s)", "throughput"),
        ["gap"] = ("Load: scheduler overhead (GPU-worker idle time between consecutive jobs under backlog)", "gap"),
        ["fairness"] = ("Load: fairness (per-user share of GPU time while one user floods)", "fairness"),
        ["reads"] = ("Load: serving core with a deep queue (wrk, hey: status reads, list pages, durable submits at 1,000 and 10,000 queued)", "reads"),
        ["streams"] = ("Load: 1,000 open event streams while 20 jobs run", "streams"),
        ["memory"] = ("Load: memory after a burst of oversized and large bodies (hey; the server's RSS)", "memory"),
        ["nodes"] = ("Load: several nodes on one PostgreSQL (jobs/min for 1, 2, 3 nodes; fairness across nodes; API rates against PostgreSQL and LiteDB; kill -9 of a node)", "nodes"),
        ["kill"] = ("Faults: SIGKILL at random moments with restarts", "kill"),
        ["disk"] = ("Faults: disk full on the outputs volume", "disk"),
        ["datafull"] = ("Faults: disk full on the data volume (LiteDB's app.db and hangfire.db)", "datafull"),
        ["malformed"] = ("Faults: malformed requests", "malformed"),
        ["fuzz"] = ("Faults: fuzz run generated from /openapi/v1.json", "fuzz"),
    };

    public static string Section(string name, Machine start, Machine end, string body)
    {
        var (title, args) = Sections[name];
        var text = new StringBuilder();
        text.AppendLine($"## {title}");
        text.AppendLine();
        text.AppendLine($"Measured {start.At:yyyy-MM-dd HH:mm} UTC ({(end.At - start.At).TotalMinutes:F1} min) on {start.Cpu}, {start.Cores} cores, {start.RamGiB:F0} GiB RAM, no GPU; " +
            $"load average {start.LoadAverage} at the start, {end.LoadAverage} at the end (other engineers' builds share these cores). " +
            $"Server: the built NewBie.dll, `serve --model tiny` on 127.0.0.1 with a fresh temp data folder, started as a child process. " +
            $"Reproduce: `{Program.Command} {args}`.");
        text.AppendLine();
        text.Append(body);
        return text.ToString();
    }

    public static string Fault(FaultReport report)
    {
        var text = new StringBuilder();
        text.AppendLine("| result | " + string.Join(" | ", report.Figures.Keys.Select(k => k.Replace('_', ' '))) + " |");
        text.AppendLine("|---|" + string.Concat(report.Figures.Keys.Select(_ => "---|")));
        var result = report.Skipped is not null ? $"skipped: {report.Skipped}" : report.Passed ? "passed" : $"FAILED: {string.Join("; ", report.Problems.Take(5))}";
        text.AppendLine($"| {result} | " + string.Join(" | ", report.Figures.Values) + " |");
        return text.ToString();
    }

    /// <summary>Replaces the section between its markers, or appends it.</summary>
    public static void Write(string path, string name, string section)
    {
        var begin = $"<!-- loadbench:{name} -->";
        var end = $"<!-- /loadbench:{name} -->";
        var block = $"{begin}\n{section.TrimEnd()}\n{end}";
        var text = File.Exists(path) ? File.ReadAllText(path) : "# Benchmarks\n";
        var from = text.IndexOf(begin, StringComparison.Ordinal);
        var to = text.IndexOf(end, StringComparison.Ordinal);
        text = from >= 0 && to > from
            ? text[..from] + block + text[(to + end.Length)..]
            : text.TrimEnd() + "\n\n" + block + "\n";
        File.WriteAllText(path, text);
    }
}
