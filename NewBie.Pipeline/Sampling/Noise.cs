using static TorchSharp.torch;

namespace NewBie.Pipeline.Sampling;

/// <summary>The initial latent noise, reproducible from a seed (model-spec §5.5).</summary>
public static class Noise
{
    /// <summary>
    /// z ~ N(0, I) of shape [1, channels, height/8, width/8], drawn in float32 by a CPU generator seeded for this call
    /// only (<see cref="SeededRandom"/>), then moved to the device and cast to the model dtype as the official demo
    /// casts its float32 noise. A seed therefore gives the same starting noise on the CPU and on every GPU.
    /// </summary>
    public static Tensor FromSeed(long seed, int width, int height, int channels, Device device, ScalarType dtype)
    {
        if (width <= 0 || height <= 0 || width % 16 != 0 || height % 16 != 0)
            throw new ArgumentException($"image size {width}×{height} must be positive multiples of 16 (latent patches of 2)");
        if (channels <= 0) throw new ArgumentException($"latent channels must be positive, got {channels}");
        return SeededRandom.Normal(seed, [1, channels, height / 8, width / 8], device, dtype);
    }
}
