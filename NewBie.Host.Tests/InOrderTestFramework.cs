using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

[assembly: TestFramework("NewBie.Host.Tests.InOrderTestFramework", "NewBie.Host.Tests")]

namespace NewBie.Host.Tests;

/// <summary>
/// xunit's own test framework, except that the test collections take the parallel slots in the order of the collection
/// orderer (<see cref="LongestFirstOrderer"/>). xunit 2.9 starts every collection as a thread-pool task that then queues
/// for one of the slots; with the pool's many threads (<see cref="TestThreadPool"/>) those tasks reach that queue in an
/// order of their own, so the order was lost: in a clean-clone CI run the fault runs, ordered first, took a slot 191 s
/// into the run and then ran alone for 54 s with the other slot idle.
/// </summary>
public sealed class InOrderTestFramework(IMessageSink messageSink) : XunitTestFramework(messageSink)
{
    protected override ITestFrameworkExecutor CreateExecutor(AssemblyName assemblyName) =>
        new Executor(assemblyName, SourceInformationProvider, DiagnosticMessageSink);

    private sealed class Executor(AssemblyName assemblyName, ISourceInformationProvider sourceInformation, IMessageSink diagnosticSink)
        : XunitTestFrameworkExecutor(assemblyName, sourceInformation, diagnosticSink)
    {
        // As XunitTestFrameworkExecutor.RunTestCases, with the runner below (async void is xunit's own contract here).
        protected override async void RunTestCases(IEnumerable<IXunitTestCase> testCases, IMessageSink executionMessageSink,
            ITestFrameworkExecutionOptions executionOptions)
        {
            using var runner = new Runner(TestAssembly, testCases, DiagnosticMessageSink, executionMessageSink, executionOptions);
            await runner.RunAsync();
        }
    }

    private sealed class Runner(ITestAssembly testAssembly, IEnumerable<IXunitTestCase> testCases, IMessageSink diagnosticSink,
        IMessageSink executionSink, ITestFrameworkExecutionOptions executionOptions)
        : XunitTestAssemblyRunner(testAssembly, testCases, diagnosticSink, executionSink, executionOptions)
    {
        // Turn i opens once the collection before it in the order has joined the queue for a slot. Collections that
        // run alone after the others (DisableParallelization) take no turn: xunit runs them one by one anyway.
        private Dictionary<Guid, int> _turnOf = [];
        private TaskCompletionSource[] _turns = [];

        protected override Task<RunSummary> RunTestCollectionsAsync(IMessageBus messageBus, CancellationTokenSource cancellationTokenSource)
        {
            var ordered = OrderTestCollections().Select(c => c.Item1).Where(c => !RunsAlone(c)).ToList();
            _turnOf = ordered.Select((c, i) => (c.UniqueID, i)).ToDictionary(x => x.UniqueID, x => x.i);
            _turns = [.. ordered.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))];
            if (_turns.Length > 0) _turns[0].SetResult();
            // A cancelled run may never start some collections: nothing waits for their turn then.
            cancellationTokenSource.Token.Register(() => { foreach (var turn in _turns) turn.TrySetResult(); });
            return base.RunTestCollectionsAsync(messageBus, cancellationTokenSource);
        }

        protected override async Task<RunSummary> RunTestCollectionAsync(IMessageBus messageBus, ITestCollection testCollection,
            IEnumerable<IXunitTestCase> testCases, CancellationTokenSource cancellationTokenSource)
        {
            if (!_turnOf.TryGetValue(testCollection.UniqueID, out var i))
                return await base.RunTestCollectionAsync(messageBus, testCollection, testCases, cancellationTokenSource);
            await _turns[i].Task;
            // The base joins the slots' queue (a FIFO semaphore) before its first await, so the next one queues behind it.
            var run = base.RunTestCollectionAsync(messageBus, testCollection, testCases, cancellationTokenSource);
            if (i + 1 < _turns.Length) _turns[i + 1].TrySetResult();
            return await run;
        }

        private static bool RunsAlone(ITestCollection collection) =>
            collection.CollectionDefinition?.GetCustomAttributes(typeof(CollectionDefinitionAttribute)).SingleOrDefault()
                ?.GetNamedArgument<bool>(nameof(CollectionDefinitionAttribute.DisableParallelization)) == true;
    }
}
