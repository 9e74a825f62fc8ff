using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace NewBie.Pipeline.Imaging;

/// <summary>
/// A minimal PNG encoder: 8-bit RGB, non-interlaced, one zlib IDAT, text chunks (torchsharp-notes §5: ImageSharp's
/// licence check fails Release builds and SkiaSharp cannot write text chunks). Text values that Latin-1 can hold go
/// into tEXt; anything else (CJK prompts, emoji) into an uncompressed iTXt as UTF-8, as Pillow and A1111 do.
/// </summary>
public static class PngWriter
{
    internal static ReadOnlySpan<byte> Signature => [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private const int BytesPerPixel = 3;

    /// <summary>Encodes row-major H × W × 3 RGB bytes, with the text chunks in the given order.</summary>
    public static byte[] Encode(int width, int height, ReadOnlySpan<byte> rgb, IEnumerable<KeyValuePair<string, string>>? text = null,
        CompressionLevel compression = CompressionLevel.Optimal)
    {
        using var ms = new MemoryStream();
        Write(ms, width, height, rgb, text, compression);
        return ms.ToArray();
    }

    /// <summary>Encodes an engine result, typically with <see cref="GenerationMetadata.For"/> as the text.</summary>
    public static byte[] Encode(GeneratedImage image, IEnumerable<KeyValuePair<string, string>>? text = null,
        CompressionLevel compression = CompressionLevel.Optimal) =>
        Encode(image.Width, image.Height, image.Rgb, text, compression);

    public static void Write(Stream output, int width, int height, ReadOnlySpan<byte> rgb, IEnumerable<KeyValuePair<string, string>>? text = null,
        CompressionLevel compression = CompressionLevel.Optimal)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}×{height} must be positive");
        if (rgb.Length != (long)width * height * BytesPerPixel)
            throw new ArgumentException($"expected {(long)width * height * BytesPerPixel} RGB bytes for {width}×{height}, got {rgb.Length}");

        output.Write(Signature);

        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(0), width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8;   // bit depth
        ihdr[9] = 2;   // colour type: truecolour
        // compression 0, filter method 0, interlace 0
        WriteChunk(output, "IHDR", ihdr);

        foreach (var (key, value) in text ?? [])
        {
            var (type, data) = TextChunk(key, value);
            WriteChunk(output, type, data);
        }

        WriteChunk(output, "IDAT", Compress(width, height, rgb, compression));
        WriteChunk(output, "IEND", []);
    }

    internal static (string Type, byte[] Data) TextChunk(string key, string value)
    {
        ValidateKeyword(key);
        if (value.Contains('\0')) throw new ArgumentException($"PNG text '{key}' contains a NUL character, which text chunks cannot hold");
        using var ms = new MemoryStream();
        ms.Write(Encoding.Latin1.GetBytes(key));
        ms.WriteByte(0);
        if (IsLatin1(value))
        {
            ms.Write(Encoding.Latin1.GetBytes(value));
            return ("tEXt", ms.ToArray());
        }
        // compression flag 0, compression method 0, empty language tag, empty translated keyword
        ms.Write([0, 0, 0, 0]);
        ms.Write(Encoding.UTF8.GetBytes(value));
        return ("iTXt", ms.ToArray());
    }

    private static bool IsLatin1(string s)
    {
        foreach (var ch in s) if (ch > 0xFF) return false;
        return true;
    }

    /// <summary>PNG keywords: 1–79 printable Latin-1 characters, no leading, trailing or doubled spaces.</summary>
    private static void ValidateKeyword(string key)
    {
        bool printable = key.All(ch => ch is >= (char)32 and <= (char)126 or >= (char)161 and <= (char)255);
        if (key.Length is < 1 or > 79 || !printable || key.StartsWith(' ') || key.EndsWith(' ') || key.Contains("  ", StringComparison.Ordinal))
            throw new ArgumentException($"'{key}' is not a valid PNG text keyword (1–79 printable Latin-1 characters, single inner spaces)");
    }

    private static void WriteChunk(Stream output, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(header, data.Length);
        Encoding.ASCII.GetBytes(type, header[4..]);
        output.Write(header);
        output.Write(data);
        Span<byte> crc = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, Crc32.Append(Crc32.Compute(header[4..]), data));
        output.Write(crc);
    }

    /// <summary>
    /// Filters each row with the filter whose output has the smallest sum of absolute values (the PNG spec's
    /// recommended heuristic: it turns smooth gradients into runs of small numbers that deflate well), then deflates.
    /// </summary>
    private static byte[] Compress(int width, int height, ReadOnlySpan<byte> rgb, CompressionLevel compression)
    {
        int stride = width * BytesPerPixel;
        var candidates = new byte[5][];
        for (int t = 0; t < 5; t++) candidates[t] = new byte[stride];
        var previous = new byte[stride];   // the row above the first row counts as zeros
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, compression, leaveOpen: true))
        {
            for (int y = 0; y < height; y++)
            {
                var row = rgb.Slice(y * stride, stride);
                int best = 0;
                long bestScore = long.MaxValue;
                for (int t = 0; t < 5; t++)
                {
                    Filter(t, row, previous, candidates[t]);
                    long score = 0;
                    foreach (var b in candidates[t]) score += b < 128 ? b : 256 - b;
                    if (score < bestScore) (best, bestScore) = (t, score);
                }
                z.WriteByte((byte)best);
                z.Write(candidates[best]);
                row.CopyTo(previous);
            }
        }
        return ms.ToArray();
    }

    private static void Filter(int type, ReadOnlySpan<byte> row, ReadOnlySpan<byte> up, Span<byte> output)
    {
        for (int i = 0; i < row.Length; i++)
        {
            int a = i >= BytesPerPixel ? row[i - BytesPerPixel] : 0;
            int b = up[i];
            int c = i >= BytesPerPixel ? up[i - BytesPerPixel] : 0;
            int predictor = type switch
            {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) >> 1,
                _ => Paeth(a, b, c),
            };
            output[i] = (byte)(row[i] - predictor);
        }
    }

    internal static int Paeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
