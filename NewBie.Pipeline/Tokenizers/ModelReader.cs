using System.Text.Json;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// Reads the <c>model</c> object of a tokenizer.json straight from the JSON tokens. Gemma's holds 262k vocabulary entries
/// and 515k merges; building a document for them and a string per merge piece made loading several times slower.
/// </summary>
internal static class ModelReader
{
    public static ITokenModel Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject) throw new InvalidDataException("tokenizer.json 'model' is not an object");
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        Dictionary<string, int>? bpeVocab = null;
        List<(string, double)>? unigramVocab = null;
        List<(int, int, int)>? merges = null;
        var buffer = new char[256];
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            if (name == "vocab" && reader.TokenType == JsonTokenType.StartObject) bpeVocab = ReadBpeVocab(ref reader);
            else if (name == "vocab" && reader.TokenType == JsonTokenType.StartArray) unigramVocab = ReadUnigramVocab(ref reader);
            else if (name == "merges")
                merges = ReadMerges(ref reader, bpeVocab ?? throw new NotSupportedException("tokenizer.json BPE 'merges' come before 'vocab'"), ref buffer);
            else
            {
                using var doc = JsonDocument.ParseValue(ref reader);
                fields[name] = doc.RootElement.Clone();
            }
        }

        var type = fields.TryGetValue("type", out var t) ? t.GetString() : null;
        switch (type)
        {
            case "BPE":
                foreach (var unsupported in new[] { "continuing_subword_prefix", "end_of_word_suffix", "dropout" })
                    if (fields.TryGetValue(unsupported, out var v) && v.ValueKind != JsonValueKind.Null)
                        throw new NotSupportedException($"BPE {unsupported} is not supported");
                return new BpeModel(
                    bpeVocab ?? throw new InvalidDataException("BPE model has no vocab object"), merges ?? [],
                    fields.TryGetValue("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String ? unk.GetString() : null,
                    Flag(fields, "fuse_unk"), Flag(fields, "byte_fallback"), Flag(fields, "ignore_merges"));
            case "Unigram":
                if (!fields.TryGetValue("unk_id", out var unkId) || unkId.ValueKind != JsonValueKind.Number)
                    throw new NotSupportedException("Unigram models without unk_id are not supported");
                return new UnigramModel(unigramVocab ?? throw new InvalidDataException("Unigram model has no vocab array"), unkId.GetInt32(), Flag(fields, "byte_fallback"));
            default:
                throw new NotSupportedException($"tokenizer.json model type '{type}' is not supported");
        }
    }

    private static bool Flag(Dictionary<string, JsonElement> fields, string name) => fields.TryGetValue(name, out var v) && v.ValueKind == JsonValueKind.True;

    private static Dictionary<string, int> ReadBpeVocab(ref Utf8JsonReader reader)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var token = reader.GetString()!;
            reader.Read();
            vocab[token] = reader.GetInt32();
        }
        return vocab;
    }

    private static List<(string, double)> ReadUnigramVocab(ref Utf8JsonReader reader)
    {
        var vocab = new List<(string, double)>();
        while (reader.Read() && reader.TokenType == JsonTokenType.StartArray)
        {
            reader.Read();
            var piece = reader.GetString()!;
            reader.Read();
            // Scores are kept as double: ties between equal-score segmentations depend on summing them in double.
            vocab.Add((piece, reader.GetDouble()));
            reader.Read();
        }
        return vocab;
    }

    /// <summary>Each merge as (left id, right id, id of left+right), resolved without allocating its strings.</summary>
    private static List<(int, int, int)> ReadMerges(ref Utf8JsonReader reader, Dictionary<string, int> vocab, ref char[] buffer)
    {
        var lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        var merges = new List<(int, int, int)>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            int leftLength, rightLength;
            if (reader.TokenType == JsonTokenType.StartArray)
            {
                reader.Read();
                leftLength = Copy(ref reader, ref buffer, 0);
                reader.Read();
                rightLength = Copy(ref reader, ref buffer, leftLength);
                reader.Read();
            }
            else
            {
                // The older format is one string, the pair joined by a space.
                var length = Copy(ref reader, ref buffer, 0);
                var space = buffer.AsSpan(0, length).IndexOf(' ');
                if (space < 0) throw new InvalidDataException($"BPE merge '{new string(buffer, 0, length)}' has no space");
                buffer.AsSpan(space + 1, length - space - 1).CopyTo(buffer.AsSpan(space));
                leftLength = space;
                rightLength = length - space - 1;
            }
            var left = buffer.AsSpan(0, leftLength);
            var right = buffer.AsSpan(leftLength, rightLength);
            var merged = buffer.AsSpan(0, leftLength + rightLength);
            if (!lookup.TryGetValue(left, out var a) || !lookup.TryGetValue(right, out var b))
                throw new InvalidDataException($"BPE merge {merges.Count} ('{left}' '{right}') uses a token missing from the vocabulary");
            if (!lookup.TryGetValue(merged, out var m))
                throw new InvalidDataException($"BPE merge {merges.Count} makes '{merged}', which is missing from the vocabulary");
            merges.Add((a, b, m));
        }
        return merges;
    }

    /// <summary>Copies the current string token into <paramref name="buffer"/> at <paramref name="at"/>, growing it as needed.</summary>
    private static int Copy(ref Utf8JsonReader reader, ref char[] buffer, int at)
    {
        if (reader.TokenType != JsonTokenType.String) throw new InvalidDataException($"expected a string in BPE merges, found {reader.TokenType}");
        var needed = at + (reader.HasValueSequence ? (int)reader.ValueSequence.Length : reader.ValueSpan.Length);
        if (needed > buffer.Length) Array.Resize(ref buffer, Math.Max(needed, buffer.Length * 2));
        return reader.CopyString(buffer.AsSpan(at));
    }
}
