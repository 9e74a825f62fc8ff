using System.Diagnostics;
using System.Globalization;
using System.Text;

// Load and fault runs against real server processes on loopback (the tiny model, fresh data folders); writes
// BENCHMARKS.md sections. Usage:
//   dotnet run -c Release --project bench/NewBie.LoadBench -- [all|seed|throughput|gap|fairness|reads|streams|memory|faults|kill|disk|datafull|malformed|fuzz|nodes]... [--no-write]
// (nodes: several nodes on one PostgreSQL, not part of all: it needs Debian's postgresql installed.)
namespace NewBie.LoadBench;

internal static class Program
{
    public const string Command = "dotnet run -c Release --project bench/NewBie.LoadBench --";

    private static async Task<int> Main(string[] args)
    {
        CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        var write = !args.Contains("--no-write");
        var wanted = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)).ToHashSet();
        if (wanted.Count == 0 || wanted.Contains("all")) wanted = ["seed", "throughput", "gap", "fairness", "reads", "streams", "memory", "kill", "disk", "datafull", "malformed", "fuzz"];
        if (wanted.Remove("faults")) wanted.UnionWith(["kill", "disk", "datafull", "malformed", "fuzz"]);
        var failed = false;
        foreach (var name in new[] { "seed", "throughput", "gap", "fairness", "reads", "streams", "memory", "kill", "disk", "datafull", "malformed", "fuzz", "nodes" }.Where(wanted.Contains))
        {
            Console.WriteLine($"== {name}");
            var machine = Machine.Now();
            var (table, ok) = name switch
            {
                "seed" => (await Scenarios.SeedTableAsync(Console.Out), true),
                "throughput" => (await Scenarios.ThroughputAsync(Console.Out), true),
                "gap" => (await Scenarios.SchedulerGapAsync(Console.Out), true),
                "fairness" => (await Scenarios.FairnessAsync(Console.Out), true),
                "reads" => (await ServingCore.ReadsAsync(Console.Out), true),
                "streams" => (await ServingCore.StreamsAsync(Console.Out), true),
                "memory" => (await MemoryRuns.AfterBurstAsync(Console.Out), true),
                "nodes" => (await MultiNode.NodesAsync(Console.Out), true),
                _ => await FaultAsync(name),
            };
            failed |= !ok;
            var section = Report.Section(name, machine, Machine.Now(), table);
            Console.WriteLine(section);
            if (write) Report.Write(Path.Combine(RepositoryRoot(), "BENCHMARKS.md"), name, section);
        }
        return failed ? 1 : 0;
    }

    private static async Task<(string Table, bool Ok)> FaultAsync(string name)
    {
        var dir = Directory.CreateTempSubdirectory("newbie-fault-").FullName;
        try
        {
            var report = name switch
            {
                "kill" => await FaultRuns.KillRestartAsync(dir, jobs: 200, kills: 25, seed: 11, Console.Out),
                "disk" => await FaultRuns.DiskFullAsync(dir, Console.Out),
                "datafull" => await FaultRuns.DataVolumeFullAsync(dir, Console.Out),
                "fuzz" => await FaultRuns.OpenApiFuzzAsync(dir, Console.Out),
                _ => await FaultRuns.MalformedAsync(dir, count: 600, Console.Out),
            };
            Console.WriteLine(report);
            return (Report.Fault(report), report.Passed);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    public static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "NewBie.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}

/// <summary>What the numbers were measured on, including how busy it was (other builds share this machine).</summary>
internal sealed record Machine(DateTime At, string Cpu, int Cores, double RamGiB, string LoadAverage)
{
    public static Machine Now()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
            : "unknown CPU";
        var ram = File.Exists("/proc/meminfo")
            ? double.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / (1024 * 1024)
            : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024);
        var load = File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]) : "n/a";
        return new Machine(DateTime.UtcNow, cpu, Environment.ProcessorCount, ram, load);
    }
}
