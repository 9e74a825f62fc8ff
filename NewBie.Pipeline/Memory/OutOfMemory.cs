using System.Runtime.InteropServices;

namespace NewBie.Pipeline.Memory;

/// <summary>Recognises a device out-of-memory, real or injected, whatever layer surfaced it.</summary>
public static class OutOfMemory
{
    /// <summary>libtorch's message for a failed CUDA allocation; TorchSharp rethrows it as an ExternalException.</summary>
    public const string CudaMessage = "CUDA out of memory.";

    public static bool IsOutOfMemory(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is OutOfMemoryException) return true;
            if (x is ExternalException && x.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }
}
