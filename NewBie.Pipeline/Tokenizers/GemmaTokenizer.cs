using System.IO.Compression;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// The Gemma-3 tokenizer as NewBie calls it (model-spec §2.1): <c>&lt;bos&gt;</c> + the text's BPE ids, no <c>&lt;eos&gt;</c>,
/// truncated to <see cref="MaxLength"/> ids including <c>&lt;bos&gt;</c>, batches right-padded with <c>&lt;pad&gt;</c> to a
/// multiple of 8. Everything else (vocabulary, merges, added tokens, normalizer, template) comes from the tokenizer.json.
/// Safe to share between threads.
/// </summary>
public sealed class GemmaTokenizer
{
    /// <summary>NewBie's <c>max_length</c> for Gemma (official demo, training, diffusers pipeline).</summary>
    public const int DefaultMaxLength = 512;

    /// <summary>NewBie's <c>pad_to_multiple_of</c>.</summary>
    public const int PadMultiple = 8;

    private readonly HfTokenizer _tokenizer;

    public int MaxLength { get; }
    public int PadId { get; }
    public int BosId { get; }
    public int VocabSize => _tokenizer.VocabSize;

    private GemmaTokenizer(HfTokenizer tokenizer, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        _tokenizer = tokenizer;
        MaxLength = maxLength;
        PadId = tokenizer.TokenId("<pad>") ?? throw new InvalidDataException("Gemma tokenizer.json has no <pad> token");
        BosId = tokenizer.TokenId("<bos>") ?? throw new InvalidDataException("Gemma tokenizer.json has no <bos> token");
        if (tokenizer.Prefix is not [var first] || first != BosId || tokenizer.Suffix.Length != 0)
            throw new InvalidDataException($"Gemma tokenizer.json template is [{string.Join(",", tokenizer.Prefix)}] $A [{string.Join(",", tokenizer.Suffix)}], expected <bos> $A");
    }

    /// <summary>Reads a tokenizer.json, or a gzip of one when the name ends in .gz.</summary>
    public static GemmaTokenizer FromFile(string path, int maxLength = DefaultMaxLength)
    {
        using var file = File.OpenRead(path);
        using var json = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        return FromJson(json, maxLength);
    }

    public static GemmaTokenizer FromJson(Stream json, int maxLength = DefaultMaxLength) => new(HfTokenizer.Load(json), maxLength);

    /// <summary>The id of a vocabulary or added token string, or null.</summary>
    public int? TokenId(string token) => _tokenizer.TokenId(token);

    /// <summary>All ids of the text, <c>&lt;bos&gt;</c> first, without truncation.</summary>
    public int[] EncodeUntruncated(string text) => _tokenizer.Encode(text).Ids;

    /// <summary>The ids NewBie feeds to Gemma: at most <see cref="MaxLength"/>, <c>&lt;bos&gt;</c> included.</summary>
    public TokenizedText Encode(string text)
    {
        var (ids, dropped) = _tokenizer.Encode(text, MaxLength);
        return new TokenizedText(ids, dropped);
    }

    public TokenBatch EncodeBatch(IReadOnlyList<string> texts) =>
        TokenBatch.Pad([.. texts.Select(Encode)], PadId, PadMultiple);
}
