using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace NewBie.Pipeline.Imaging;

/// <summary>A text chunk: its type (<c>tEXt</c>, <c>iTXt</c> or <c>zTXt</c>), keyword and decoded text.</summary>
public sealed record PngTextChunk(string Type, string Keyword, string Text);

/// <summary>A decoded 8-bit RGB PNG: row-major H × W × 3 bytes, and its text chunks in file order.</summary>
public sealed record PngImage(int Width, int Height, byte[] Rgb, IReadOnlyList<PngTextChunk> Text)
{
    /// <summary>The text of the first chunk with this keyword, or null.</summary>
    public string? TextOf(string keyword) => Text.FirstOrDefault(t => t.Keyword == keyword)?.Text;
}

/// <summary>
/// Reads back the PNGs <see cref="PngWriter"/> makes (8-bit RGB, non-interlaced), checking every chunk's CRC:
/// used to verify outputs and to read the generation parameters stored in an image.
/// </summary>
public static class PngReader
{
    public static PngImage Read(ReadOnlySpan<byte> png)
    {
        if (png.Length < 8 || !png[..8].SequenceEqual(PngWriter.Signature)) throw new InvalidDataException("not a PNG file (bad signature)");
        int pos = 8, width = 0, height = 0;
        bool seenHeader = false, seenEnd = false;
        var idat = new MemoryStream();
        var text = new List<PngTextChunk>();
        while (!seenEnd)
        {
            if (pos + 12 > png.Length) throw new InvalidDataException($"truncated PNG: chunk header at byte {pos}");
            int length = BinaryPrimitives.ReadInt32BigEndian(png[pos..]);
            if (length < 0 || pos + 12L + length > png.Length) throw new InvalidDataException($"truncated PNG: chunk at byte {pos} claims {length} bytes");
            var typeBytes = png.Slice(pos + 4, 4);
            var type = Encoding.ASCII.GetString(typeBytes);
            var data = png.Slice(pos + 8, length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + length)..]);
            uint actual = Crc32.Append(Crc32.Compute(typeBytes), data);
            if (stored != actual) throw new InvalidDataException($"CRC mismatch in {type} chunk at byte {pos}: stored {stored:X8}, computed {actual:X8}");
            pos += 12 + length;

            if (!seenHeader && type != "IHDR") throw new InvalidDataException($"first chunk is {type}, not IHDR");
            switch (type)
            {
                case "IHDR":
                    width = BinaryPrimitives.ReadInt32BigEndian(data);
                    height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                    if (data[8] != 8 || data[9] != 2 || data[10] != 0 || data[11] != 0 || data[12] != 0)
                        throw new NotSupportedException($"only 8-bit RGB non-interlaced PNGs are supported (bit depth {data[8]}, colour type {data[9]}, interlace {data[12]})");
                    seenHeader = true;
                    break;
                case "IDAT": idat.Write(data); break;
                case "tEXt" or "zTXt" or "iTXt": text.Add(ParseText(type, data)); break;
                case "IEND": seenEnd = true; break;
            }
        }
        return new PngImage(width, height, Unfilter(Inflate(idat.ToArray()), width, height), text);
    }

    private static PngTextChunk ParseText(string type, ReadOnlySpan<byte> data)
    {
        int nul = data.IndexOf((byte)0);
        if (nul < 1) throw new InvalidDataException($"{type} chunk without a keyword");
        var keyword = Encoding.Latin1.GetString(data[..nul]);
        var rest = data[(nul + 1)..];
        switch (type)
        {
            case "tEXt":
                return new(type, keyword, Encoding.Latin1.GetString(rest));
            case "zTXt":
                return new(type, keyword, Encoding.Latin1.GetString(Inflate(rest[1..].ToArray())));
            default:
                bool compressed = rest[0] == 1;
                rest = rest[2..];
                rest = rest[(rest.IndexOf((byte)0) + 1)..];   // language tag
                rest = rest[(rest.IndexOf((byte)0) + 1)..];   // translated keyword
                return new(type, keyword, Encoding.UTF8.GetString(compressed ? Inflate(rest.ToArray()) : rest));
        }
    }

    private static byte[] Inflate(byte[] zlib)
    {
        using var z = new ZLibStream(new MemoryStream(zlib), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        z.CopyTo(ms);
        return ms.ToArray();
    }

    private static byte[] Unfilter(byte[] filtered, int width, int height)
    {
        const int bpp = 3;
        int stride = width * bpp;
        if (filtered.Length != (long)(stride + 1) * height)
            throw new InvalidDataException($"image data is {filtered.Length} bytes, expected {(long)(stride + 1) * height} for {width}×{height} RGB");
        var rgb = new byte[(long)stride * height];
        for (int y = 0; y < height; y++)
        {
            int type = filtered[y * (stride + 1)];
            var src = filtered.AsSpan(y * (stride + 1) + 1, stride);
            var row = rgb.AsSpan(y * stride, stride);
            ReadOnlySpan<byte> up = y > 0 ? rgb.AsSpan((y - 1) * stride, stride) : new byte[stride];
            for (int i = 0; i < stride; i++)
            {
                int a = i >= bpp ? row[i - bpp] : 0;
                int b = up[i];
                int c = i >= bpp ? up[i - bpp] : 0;
                int predictor = type switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) >> 1,
                    4 => PngWriter.Paeth(a, b, c),
                    _ => throw new InvalidDataException($"row {y} has unknown filter type {type}"),
                };
                row[i] = (byte)(src[i] + predictor);
            }
        }
        return rgb;
    }
}
