using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// SentencePiece's precompiled normalization table (the <c>precompiled_charsmap</c> of a tokenizer.json), applied the way
/// Hugging Face's <c>Precompiled</c> normalizer applies it. The blob is a little-endian u32 trie size in bytes, a darts-clone
/// double-array trie over UTF-8 keys whose values are offsets into the rest of the blob, and there the NUL-terminated
/// replacement strings.
/// </summary>
internal sealed class PrecompiledCharsmap
{
    private readonly uint[] _units;
    private readonly byte[] _replacements;
    private readonly ConcurrentDictionary<int, string> _decoded = new();

    private PrecompiledCharsmap(uint[] units, byte[] replacements)
    {
        _units = units;
        _replacements = replacements;
    }

    public static PrecompiledCharsmap Parse(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < 4) throw new InvalidDataException("precompiled_charsmap is shorter than its 4-byte header");
        var trieBytes = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieBytes % 4 != 0 || trieBytes > blob.Length - 4)
            throw new InvalidDataException($"precompiled_charsmap declares a {trieBytes}-byte trie in a {blob.Length}-byte blob");
        var units = new uint[trieBytes / 4];
        for (var i = 0; i < units.Length; i++) units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob[(4 + 4 * i)..]);
        if (units.Length == 0) throw new InvalidDataException("precompiled_charsmap has an empty trie");
        return new PrecompiledCharsmap(units, blob[(4 + (int)trieBytes)..].ToArray());
    }

    /// <summary>
    /// Normalizes per extended grapheme cluster, as Hugging Face does (and unlike SentencePiece's longest match over the raw
    /// text): a cluster shorter than 6 UTF-8 bytes is replaced as a whole by the shortest rule matching a prefix of it (so a
    /// mark after a mapped letter is lost); otherwise, or when no rule matches, each code point is mapped on its own.
    /// </summary>
    public string Normalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        byte[]? rented = null;
        Span<byte> buffer = stackalloc byte[64];
        for (var i = 0; i < text.Length;)
        {
            var length = StringInfo.GetNextTextElementLength(text.AsSpan(i));
            var cluster = text.AsSpan(i, length);
            i += length;
            var byteCount = Encoding.UTF8.GetByteCount(cluster);
            if (byteCount < 6)
            {
                var n = Encoding.UTF8.GetBytes(cluster, buffer);
                if (Transform(buffer[..n]) is { } whole)
                {
                    sb.Append(whole);
                    continue;
                }
            }
            if (byteCount > buffer.Length)
            {
                if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
                rented = ArrayPool<byte>.Shared.Rent(byteCount);
                buffer = rented;
            }
            for (var j = 0; j < cluster.Length;)
            {
                var width = char.IsHighSurrogate(cluster[j]) && j + 1 < cluster.Length && char.IsLowSurrogate(cluster[j + 1]) ? 2 : 1;
                var codePoint = cluster.Slice(j, width);
                j += width;
                var n = Encoding.UTF8.GetBytes(codePoint, buffer);
                if (Transform(buffer[..n]) is { } mapped) sb.Append(mapped);
                else sb.Append(codePoint);
            }
        }
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        return sb.ToString();
    }

    /// <summary>The replacement of the shortest rule whose key is a prefix of <paramref name="key"/>, or null.</summary>
    internal string? Transform(ReadOnlySpan<byte> key)
    {
        // darts-clone traversal: a unit holds label (bits 0-7, bit 31 for value units), has_leaf (bit 8) and the XOR offset to
        // its children (bits 10-30, shifted left by 8 when bit 9 is set); a key's value unit is its child with label 0.
        var pos = (long)Offset(_units[0]);
        foreach (var c in key)
        {
            if (c == 0) break;
            pos ^= c;
            if ((ulong)pos >= (ulong)_units.Length) return null;
            var unit = _units[pos];
            if ((unit & 0x800000FFu) != c) return null;
            pos ^= Offset(unit);
            if ((unit >> 8 & 1) != 0)
            {
                if ((ulong)pos >= (ulong)_units.Length) return null;
                return Replacement((int)(_units[pos] & 0x7FFFFFFFu));
            }
        }
        return null;
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);

    private string Replacement(int start)
    {
        if (_decoded.TryGetValue(start, out var s)) return s;
        if (start > _replacements.Length) throw new InvalidDataException($"precompiled_charsmap points at byte {start} past its {_replacements.Length}-byte string table");
        var end = Array.IndexOf(_replacements, (byte)0, start);
        if (end < 0) end = _replacements.Length;
        s = Encoding.UTF8.GetString(_replacements, start, end - start);
        _decoded[start] = s;
        return s;
    }
}
