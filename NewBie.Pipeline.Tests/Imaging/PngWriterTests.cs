using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using NewBie.Pipeline.Imaging;

namespace NewBie.Pipeline.Tests.Imaging;

public sealed class PngWriterTests
{
    private static byte[] RandomRgb(int width, int height, int seed)
    {
        var rgb = new byte[width * height * 3];
        new Random(seed).NextBytes(rgb);
        return rgb;
    }

    /// <summary>Smooth gradients with noise and flat areas, so the filter heuristic picks every filter type somewhere.</summary>
    private static byte[] PhotoLikeRgb(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        var random = new Random(3);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                rgb[i] = (byte)(x * 255 / Math.Max(1, width - 1));
                rgb[i + 1] = (byte)(y * 255 / Math.Max(1, height - 1));
                rgb[i + 2] = y % 7 == 0 ? (byte)200 : x < width / 3 ? (byte)random.Next(256) : (byte)((x + y) * 3);
            }
        return rgb;
    }

    /// <summary>Chunk types in file order, parsed here independently of PngReader.</summary>
    private static List<(string Type, byte[] Data, uint Crc)> Chunks(byte[] png)
    {
        var chunks = new List<(string, byte[], uint)>();
        for (int pos = 8; pos < png.Length;)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(pos));
            chunks.Add((Encoding.ASCII.GetString(png, pos + 4, 4), png.AsSpan(pos + 8, length).ToArray(),
                BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(pos + 8 + length))));
            pos += 12 + length;
        }
        return chunks;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(37, 23)]
    [InlineData(64, 48)]
    public void Round_trip_keeps_every_pixel(int width, int height)
    {
        foreach (var rgb in new[] { RandomRgb(width, height, width), PhotoLikeRgb(width, height) })
        {
            var image = PngReader.Read(PngWriter.Encode(width, height, rgb));
            Assert.Equal(width, image.Width);
            Assert.Equal(height, image.Height);
            Assert.Equal(rgb, image.Rgb);
        }
    }

    /// <summary>
    /// Rows built so that exactly one filter turns them into zeros: the heuristic must pick it, and the reader must undo it.
    /// Row 0 is all zeros (every filter gives zeros; None is the first), odd rows are noise.
    /// </summary>
    [Fact]
    public void Each_row_gets_the_filter_that_predicts_it_and_reads_back()
    {
        const int width = 16, stride = width * 3;
        var random = new Random(5);
        var rows = new byte[9][];
        for (int y = 1; y < 9; y += 2) { rows[y] = new byte[stride]; random.NextBytes(rows[y]); }
        rows[0] = new byte[stride];
        rows[2] = (byte[])rows[1].Clone();                                                  // Up
        rows[4] = Predicted(rows[3], (a, b, c) => (a + b) >> 1);                            // Average
        rows[6] = Predicted(rows[5], (a, b, c) => PngWriter.Paeth(a, b, c));                // Paeth
        rows[8] = Enumerable.Repeat((byte)100, stride).ToArray();                           // Sub
        var rgb = rows.SelectMany(r => r).ToArray();

        var png = PngWriter.Encode(width, 9, rgb);
        var idat = Chunks(png).Single(c => c.Type == "IDAT").Data;
        using var z = new ZLibStream(new MemoryStream(idat), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        var filters = raw.ToArray().Where((_, i) => i % (stride + 1) == 0).ToArray();
        Assert.Equal(new byte[] { 0, 2, 3, 4, 1 }, new[] { filters[0], filters[2], filters[4], filters[6], filters[8] });
        Assert.Equal(rgb, PngReader.Read(png).Rgb);

        // A row whose every byte is its filter's prediction from the row above (b) and the pixel to the left (a, c).
        static byte[] Predicted(byte[] up, Func<int, int, int, int> predictor)
        {
            var row = new byte[up.Length];
            var noise = new Random(up[0]);
            for (int i = 0; i < row.Length; i++)
                row[i] = i < 3 ? (byte)noise.Next(256) : (byte)predictor(row[i - 3], up[i], up[i - 3]);
            return row;
        }
    }

    [Fact]
    public void Layout_is_signature_IHDR_text_IDAT_IEND_with_8_bit_RGB()
    {
        var png = PngWriter.Encode(3, 2, RandomRgb(3, 2, 1), [new("Software", "NewBie Server")]);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        var chunks = Chunks(png);
        Assert.Equal(["IHDR", "tEXt", "IDAT", "IEND"], chunks.Select(c => c.Type));
        Assert.Equal(new byte[] { 0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0 }, chunks[0].Data);
        // IEND is always the same 12 bytes; its CRC (AE 42 60 82) is the best-known value in PNG.
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82 }, png[^12..]);
    }

    [Fact]
    public void Every_chunk_crc_is_the_standard_crc32_of_type_and_data()
    {
        // The CRC-32 check value from the catalogue of parametrised CRCs.
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        var png = PngWriter.Encode(5, 4, RandomRgb(5, 4, 2), [new("prompt", "1girl"), new("negative_prompt", "模糊")]);
        foreach (var (type, data, crc) in Chunks(png))
            Assert.Equal(Crc32.Compute([.. Encoding.ASCII.GetBytes(type), .. data]), crc);
    }

    [Fact]
    public void Reader_refuses_a_chunk_whose_crc_does_not_match()
    {
        var png = PngWriter.Encode(4, 4, RandomRgb(4, 4, 3), [new("prompt", "a cat")]);
        var textAt = Encoding.ASCII.GetString(png).IndexOf("a cat", StringComparison.Ordinal);
        png[textAt] ^= 0x20;
        var ex = Assert.Throws<InvalidDataException>(() => PngReader.Read(png));
        Assert.Contains("CRC mismatch in tEXt", ex.Message);
    }

    [Fact]
    public void Latin1_text_goes_into_tEXt_and_CJK_text_into_UTF8_iTXt()
    {
        const string latin = "café, 1girl, très joli ×2";
        const string cjk = "<character_1><n>初音ミク</n></character_1> 桜の下で";
        var png = PngWriter.Encode(2, 2, RandomRgb(2, 2, 4), [new("prompt", latin), new("negative_prompt", cjk)]);
        var image = PngReader.Read(png);
        Assert.Equal(new PngTextChunk("tEXt", "prompt", latin), image.Text[0]);
        Assert.Equal(new PngTextChunk("iTXt", "negative_prompt", cjk), image.Text[1]);

        var chunks = Chunks(png);
        Assert.Equal([.. Encoding.Latin1.GetBytes("prompt"), 0, .. Encoding.Latin1.GetBytes(latin)], chunks[1].Data);
        // keyword, NUL, compression flag 0, method 0, empty language tag, empty translated keyword, UTF-8 text
        Assert.Equal([.. Encoding.Latin1.GetBytes("negative_prompt"), 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(cjk)], chunks[2].Data);
    }

    [Theory]
    [InlineData("")]
    [InlineData(" lead")]
    [InlineData("two  spaces")]
    [InlineData("日本")]
    public void Invalid_keywords_are_refused(string keyword)
    {
        Assert.Throws<ArgumentException>(() => PngWriter.Encode(1, 1, new byte[3], [new(keyword, "x")]));
    }

    [Fact]
    public void Text_with_a_NUL_character_is_refused()
    {
        Assert.Throws<ArgumentException>(() => PngWriter.Encode(1, 1, new byte[3], [new("prompt", "a\0b")]));
    }

    [Fact]
    public void Pixel_buffer_of_the_wrong_size_is_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => PngWriter.Encode(2, 2, new byte[11]));
        Assert.Contains("expected 12 RGB bytes", ex.Message);
    }

    /// <summary>
    /// An independent decoder: python3's zlib (inflate, crc32) plus a PNG unfilter written from the spec, and Pillow too
    /// where it is installed. Runs only where python3 is; the tests above do not depend on it.
    /// </summary>
    [Fact]
    public void Independent_python_zlib_decoder_reads_the_same_pixels_and_text_when_python3_is_present()
    {
        if (FindOnPath("python3") is not { } python) return;
        var dir = Directory.CreateTempSubdirectory("newbie-png-").FullName;
        try
        {
            var rgb = PhotoLikeRgb(33, 17);
            File.WriteAllBytes(Path.Combine(dir, "image.png"),
                PngWriter.Encode(33, 17, rgb, [new("parameters", "1girl\nSteps: 28"), new("prompt", "桜 🌸")]));
            File.WriteAllBytes(Path.Combine(dir, "expected.rgb"), rgb);
            File.WriteAllText(Path.Combine(dir, "check.py"), PythonCheck);
            var psi = new ProcessStartInfo(python, ["check.py"]) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEnd();
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, stderr);
            Assert.Equal("33x17 pixels ok\ntEXt parameters '1girl\\nSteps: 28'\niTXt prompt '桜 🌸'\n", stdout.Replace("\r\n", "\n"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private const string PythonCheck = """
        import struct, sys, zlib
        sys.stdout.reconfigure(encoding="utf-8")
        png = open("image.png", "rb").read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        pos, idat, texts = 8, b"", []
        while pos < len(png):
            n, kind = struct.unpack(">I4s", png[pos:pos + 8])
            data = png[pos + 8:pos + 8 + n]
            crc, = struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])
            assert zlib.crc32(kind + data) == crc, kind
            if kind == b"IHDR":
                w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data)
                assert (depth, color, interlace) == (8, 2, 0)
            elif kind == b"IDAT":
                idat += data
            elif kind == b"tEXt":
                k, v = data.split(b"\0", 1)
                texts.append(("tEXt", k.decode("latin-1"), v.decode("latin-1")))
            elif kind == b"iTXt":
                k, rest = data.split(b"\0", 1)
                assert rest[:2] == b"\0\0"
                _, _, v = rest[2:].split(b"\0", 2)
                texts.append(("iTXt", k.decode("latin-1"), v.decode("utf-8")))
            pos += 12 + n
        raw, stride, out = zlib.decompress(idat), w * 3, bytearray()
        for y in range(h):
            f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            up = out[(y - 1) * stride:y * stride] if y else bytearray(stride)
            for i in range(stride):
                a = line[i - 3] if i >= 3 else 0
                b = up[i]
                c = up[i - 3] if i >= 3 else 0
                if f == 1: line[i] = (line[i] + a) & 255
                elif f == 2: line[i] = (line[i] + b) & 255
                elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
                elif f == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            out += line
        expected = open("expected.rgb", "rb").read()
        assert bytes(out) == expected, "pixels differ"
        try:
            from PIL import Image
        except ImportError:
            Image = None
        if Image is not None:
            im = Image.open("image.png")
            assert im.mode == "RGB" and im.size == (w, h), (im.mode, im.size)
            assert im.tobytes() == expected, "Pillow reads other pixels"
            assert im.text == {k: v for _, k, v in texts}, im.text
        print(f"{w}x{h} pixels ok")
        for kind, k, v in texts:
            print(kind, k, repr(v))
        """;
}
