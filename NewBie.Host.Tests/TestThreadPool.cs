using System.Runtime.CompilerServices;
using NewBie.Host.Storage;

namespace NewBie.Host.Tests;

internal static class TestThreadPool
{
    /// <summary>
    /// One test process runs many in-process servers, child processes and browsers that wait at once (a server runs one):
    /// a floor keeps them from waiting on the pool's slow growth. Set here, not in the project's runtimeconfig (a floor
    /// forced there cannot be raised by SetMinThreads), and below <see cref="StorageSetup.PostgresMinWorkerThreads"/>, so
    /// that a server on PostgreSQL visibly raises it (RuntimeConfigTests).
    /// </summary>
    internal const int MinWorkerThreads = 32;

    [ModuleInitializer]
    internal static void SetFloor()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        if (workers < MinWorkerThreads) ThreadPool.SetMinThreads(MinWorkerThreads, io);
    }
}
