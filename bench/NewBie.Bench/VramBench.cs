using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Bench;

/// <summary>
/// Peak VRAM of one job per memory plan and size: the full architecture with random weights, 2 Euler steps and an
/// untiled decode. Each plan runs in its own child process (libtorch's caching allocator never gives memory back, so
/// plans cannot share one); sizes run smallest first, so each peak includes what the smaller ones left cached.
/// Peak = the driver's used memory (NVML, polled every 5 ms) minus what was used before the model was created.
/// </summary>
internal static class VramBench
{
    public static readonly int[] Sides = [1024, 1536, 2048];
    private const string Marker = "VRAM";

    public sealed record Cell(MemoryPlan Plan, int Side, string Peak);

    /// <summary>The sizes measured: <see cref="Sides"/>, or one tiny size for bench/gpu's dry run.</summary>
    public static int[] SidesFor(bool tiny) => tiny ? [64] : Sides;

    /// <summary>
    /// Every plan × size, each plan measured by a child process; "not measured" without a GPU. With
    /// <paramref name="tiny"/> (bench/gpu's dry run) the children run the tiny model even without a GPU.
    /// </summary>
    /// <remarks>
    /// With <paramref name="modelsDir"/> (bench/gpu: the random model folder it wrote for the server) each child loads
    /// that folder, as the server does, instead of drawing every weight anew: the draws run on the CPU (SeededRandom),
    /// about 9.5 billion of them per child at full size, which would dominate the GPU run's time budget.
    /// </remarks>
    public static List<Cell> Measure(bool tiny = false, string? modelsDir = null)
    {
        var cells = new List<Cell>();
        foreach (var plan in MemoryPlans.ByPreference)
        {
            if (!tiny && !torch.cuda.is_available())
            {
                cells.AddRange(Sides.Select(s => new Cell(plan, s, "not measured (no GPU lent to this task)")));
                continue;
            }
            string[] arguments = ["--vram-plan", plan.Name(), .. tiny ? ["--tiny"] : Array.Empty<string>(),
                .. modelsDir is null ? Array.Empty<string>() : ["--models-dir", modelsDir]];
            var start = new ProcessStartInfo(Environment.ProcessPath!, arguments) { RedirectStandardOutput = true };
            using var child = Process.Start(start)!;
            var lines = child.StandardOutput.ReadToEnd().Split('\n').Where(l => l.StartsWith(Marker, StringComparison.Ordinal)).ToList();
            child.WaitForExit();
            foreach (var side in SidesFor(tiny))
            {
                var line = lines.FirstOrDefault(l => l.Split(' ')[1] == side.ToString(CultureInfo.InvariantCulture));
                cells.Add(new Cell(plan, side, line?.Split(' ', 3)[2] ?? $"failed (exit code {child.ExitCode})"));
            }
        }
        return cells;
    }

    /// <summary>The child: one plan, every size, one "VRAM side result" line each on stdout.</summary>
    public static int RunPlan(string planName, bool tiny, string? modelsDir = null)
    {
        var plan = MemoryPlans.Parse(planName) ?? throw new ArgumentException($"unknown plan {planName}");
        var (device, dtype) = NewBiePipeline.DefaultDevice();
        using var nvml = new NvmlUsed();
        var baseline = nvml.Used();
        var scratch = Directory.CreateTempSubdirectory("newbie-vram-").FullName;
        try
        {
            var config = tiny ? PipelineConfig.Tiny : PipelineConfig.NewBieExp01;
            var options = new PipelineOptions { MemoryPlan = plan };
            using var pipeline = modelsDir is null
                ? NewBiePipeline.CreateRandom(config, device, dtype, options, scratch)
                : NewBiePipeline.Load(modelsDir, config, device, dtype, options);
            foreach (var side in tiny ? [64] : Sides)
            {
                using var peak = nvml.TrackPeak();
                string result;
                try
                {
                    pipeline.Generate(new GenerationRequest { Prompt = "1girl, solo", Width = side, Height = side, Steps = 2, Seed = 1 }, null, CancellationToken.None);
                    if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
                    result = peak.Max is { } max && baseline is { } b ? $"{(max - b) / (double)(1L << 30):F1} GiB" : "not measured (no NVML)";
                }
                catch (Exception e) when (OutOfMemory.IsOutOfMemory(e))
                {
                    result = "out of memory";
                }
                Console.WriteLine($"{Marker} {side} {result}");
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        return 0;
    }

    /// <summary>Used memory of GPU 0 from the NVIDIA driver; null without it.</summary>
    private sealed class NvmlUsed : IDisposable
    {
        [StructLayout(LayoutKind.Sequential)] private struct Memory { public ulong Total, Free, Used; }
        private delegate int InitFn();
        private delegate int HandleFn(uint index, out IntPtr device);
        private delegate int MemoryFn(IntPtr device, out Memory memory);

        private readonly IntPtr _lib;
        private readonly IntPtr _device;
        private readonly MemoryFn? _memory;

        public NvmlUsed()
        {
            if (!NativeLibrary.TryLoad(OperatingSystem.IsWindows() ? "nvml.dll" : "libnvidia-ml.so.1", out _lib)) return;
            if (Fn<InitFn>("nvmlInit_v2")() != 0 || Fn<HandleFn>("nvmlDeviceGetHandleByIndex_v2")(0, out _device) != 0) return;
            _memory = Fn<MemoryFn>("nvmlDeviceGetMemoryInfo");
        }

        private T Fn<T>(string name) where T : Delegate => Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(_lib, name));

        public long? Used() => _memory is not null && _memory(_device, out var m) == 0 ? (long)m.Used : null;

        public Peak TrackPeak() => new(this);

        public void Dispose()
        {
            if (_memory is not null) Fn<InitFn>("nvmlShutdown")();
        }

        public sealed class Peak : IDisposable
        {
            private readonly CancellationTokenSource _stop = new();
            private readonly Thread _thread;
            private long _max = -1;

            public Peak(NvmlUsed nvml)
            {
                _thread = new Thread(() =>
                {
                    while (!_stop.IsCancellationRequested)
                    {
                        if (nvml.Used() is { } used && used > Interlocked.Read(ref _max)) Interlocked.Exchange(ref _max, used);
                        Thread.Sleep(5);
                    }
                }) { IsBackground = true };
                _thread.Start();
            }

            public long? Max => Interlocked.Read(ref _max) is var m and >= 0 ? m : null;

            public void Dispose()
            {
                _stop.Cancel();
                _thread.Join();
            }
        }
    }
}
