using System.Collections.Concurrent;
using System.Text;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace NewBie.Bench.GpuCheck;

/// <summary>
/// Runs the <c>Category=Parity</c> tests of NewBie.Pipeline.Tests in this process through xunit's own test framework
/// (discovery and execution of xunit.execution, no copy of any test): the GPU machine has no dotnet to run
/// <c>dotnet test</c>. Device and dtype come from the tests' own switch (<c>NEWBIE_PARITY_DEVICE</c>,
/// <c>NEWBIE_PARITY_DTYPE</c>, read once per process), so bench/gpu/run starts one process per combination.
/// </summary>
internal static class ParityRunner
{
    public sealed record Outcome(string Name, string Result, double Seconds, string? Message);

    /// <summary>Runs every parity test case, or those whose display name contains <paramref name="filter"/>.</summary>
    public static List<Outcome> Run(TextWriter log, string? filter = null)
    {
        var assembly = typeof(NewBie.Pipeline.Tests.Parity).Assembly;
        using var framework = new XunitTestFramework(new LogSink(log));
        using var discoverer = framework.GetDiscoverer(Reflector.Wrap(assembly));
        var discovery = new DiscoverySink();
        discoverer.Find(includeSourceInformation: false, discovery, new Options());
        discovery.Done.Wait();
        var cases = discovery.Cases
            .Where(c => c.Traits.TryGetValue("Category", out var values) && values.Contains("Parity"))
            .Where(c => filter is null || c.DisplayName.Contains(filter, StringComparison.Ordinal))
            .ToList();
        log.WriteLine($"parity: {cases.Count} test cases with Category=Parity{(filter is null ? "" : $" whose name contains '{filter}'")}");

        using var executor = framework.GetExecutor(assembly.GetName());
        var execution = new ExecutionSink(log);
        // One at a time: they share one GPU, and a failure's message must not interleave with another test's.
        var options = new Options();
        options.SetValue("xunit.execution.DisableParallelization", (bool?)true);
        executor.RunTests(cases, execution, options);
        execution.Done.Wait();
        return [.. execution.Outcomes.OrderBy(o => o.Name, StringComparer.Ordinal)];
    }

    /// <summary>The Markdown lines of one run: counts, then every failure and skip with its message.</summary>
    public static string Markdown(string title, List<Outcome> outcomes)
    {
        var sb = new StringBuilder();
        int passed = outcomes.Count(o => o.Result == "passed"), failed = outcomes.Count(o => o.Result == "failed"), skipped = outcomes.Count(o => o.Result == "skipped");
        sb.AppendLine($"**{title}**: {passed} passed, {failed} failed, {skipped} skipped ({outcomes.Sum(o => o.Seconds):F1} s).");
        sb.AppendLine();
        if (outcomes.Count == 0) sb.AppendLine("No parity test ran: the test assembly has none, or the fixtures were not found.");
        foreach (var o in outcomes.Where(o => o.Result == "failed"))
            sb.AppendLine($"- failed: `{o.Name}`: {OneLine(o.Message)}");
        // Skips are fixture kinds the bundle does not carry (the tokenizers run on no device); one line per reason.
        foreach (var reason in outcomes.Where(o => o.Result == "skipped").GroupBy(o => OneLine(o.Message)))
            sb.AppendLine($"- skipped ×{reason.Count()}: {reason.Key}");
        return sb.ToString();
    }

    private static string OneLine(string? text) =>
        text is null ? "" : string.Join(" ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Replace("|", "\\|", StringComparison.Ordinal);

    /// <summary>Discovery and execution options: xunit reads named values, absent ones take its defaults.</summary>
    private sealed class Options : ITestFrameworkDiscoveryOptions, ITestFrameworkExecutionOptions
    {
        private readonly Dictionary<string, object?> _values = new(StringComparer.Ordinal);

        public TValue GetValue<TValue>(string name) => _values.TryGetValue(name, out var v) && v is TValue t ? t : default!;

        public void SetValue<TValue>(string name, TValue value) => _values[name] = value;
    }

    private sealed class LogSink(TextWriter log) : Xunit.LongLivedMarshalByRefObject, IMessageSink
    {
        public bool OnMessage(IMessageSinkMessage message)
        {
            if (message is IDiagnosticMessage d) log.WriteLine("xunit: " + d.Message);
            return true;
        }
    }

    private sealed class DiscoverySink : Xunit.LongLivedMarshalByRefObject, IMessageSink
    {
        public List<ITestCase> Cases { get; } = [];
        public ManualResetEventSlim Done { get; } = new();

        public bool OnMessage(IMessageSinkMessage message)
        {
            if (message is ITestCaseDiscoveryMessage found) Cases.Add(found.TestCase);
            if (message is IDiscoveryCompleteMessage) Done.Set();
            return true;
        }
    }

    private sealed class ExecutionSink(TextWriter log) : Xunit.LongLivedMarshalByRefObject, IMessageSink
    {
        public ConcurrentBag<Outcome> Outcomes { get; } = [];
        public ManualResetEventSlim Done { get; } = new();

        public bool OnMessage(IMessageSinkMessage message)
        {
            switch (message)
            {
                case ITestPassed p:
                    Add(new Outcome(p.Test.DisplayName, "passed", (double)p.ExecutionTime, null));
                    break;
                case ITestFailed f:
                    Add(new Outcome(f.Test.DisplayName, "failed", (double)f.ExecutionTime,
                        string.Join(" ", f.ExceptionTypes.Zip(f.Messages, (t, m) => $"{t}: {m}"))));
                    log.WriteLine(string.Join("\n", f.StackTraces.Where(s => s is not null)));
                    break;
                case ITestSkipped s:
                    Add(new Outcome(s.Test.DisplayName, "skipped", 0, s.Reason));
                    break;
                case IErrorMessage e:
                    Add(new Outcome("(xunit error)", "failed", 0, string.Join(" ", e.Messages)));
                    break;
                case ITestAssemblyFinished:
                    Done.Set();
                    break;
            }
            return true;
        }

        private void Add(Outcome o)
        {
            Outcomes.Add(o);
            log.WriteLine($"{o.Result,-7} {o.Seconds,7:F2} s  {o.Name}{(o.Message is null ? "" : "  -- " + OneLine(o.Message))}");
        }
    }
}
