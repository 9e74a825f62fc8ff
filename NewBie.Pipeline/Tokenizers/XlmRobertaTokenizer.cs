using System.IO.Compression;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// The XLM-RoBERTa tokenizer of Jina CLIP v2 as NewBie calls it (model-spec §2.2): <c>&lt;s&gt;</c> + Unigram ids +
/// <c>&lt;/s&gt;</c> (fairseq ids), truncated to <see cref="MaxLength"/> ids keeping <c>&lt;/s&gt;</c> last, batches
/// right-padded with <c>&lt;pad&gt;</c> to the longest row. Normalizer, pre-tokenizer, vocabulary and scores come from the
/// tokenizer.json. Safe to share between threads.
/// </summary>
public sealed class XlmRobertaTokenizer
{
    /// <summary>NewBie's <c>max_length</c> for Jina (official demo and training).</summary>
    public const int DefaultMaxLength = 2048;

    private readonly HfTokenizer _tokenizer;

    public int MaxLength { get; }
    public int PadId { get; }
    public int VocabSize => _tokenizer.VocabSize;

    private XlmRobertaTokenizer(HfTokenizer tokenizer, int maxLength)
    {
        _tokenizer = tokenizer;
        PadId = tokenizer.TokenId("<pad>") ?? throw new InvalidDataException("XLM-R tokenizer.json has no <pad> token");
        if (maxLength < tokenizer.Prefix.Length + tokenizer.Suffix.Length)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "shorter than the template's special tokens");
        MaxLength = maxLength;
    }

    /// <summary>Reads a tokenizer.json, or a gzip of one when the name ends in .gz.</summary>
    public static XlmRobertaTokenizer FromFile(string path, int maxLength = DefaultMaxLength)
    {
        using var file = File.OpenRead(path);
        using var json = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        return FromJson(json, maxLength);
    }

    public static XlmRobertaTokenizer FromJson(Stream json, int maxLength = DefaultMaxLength) => new(HfTokenizer.Load(json), maxLength);

    /// <summary>The id of a vocabulary or added token string, or null.</summary>
    public int? TokenId(string token) => _tokenizer.TokenId(token);

    /// <summary>All ids of the text, <c>&lt;s&gt;</c> first and <c>&lt;/s&gt;</c> last, without truncation.</summary>
    public int[] EncodeUntruncated(string text) => _tokenizer.Encode(text).Ids;

    /// <summary>The ids NewBie feeds to Jina: at most <see cref="MaxLength"/>, ending in <c>&lt;/s&gt;</c>.</summary>
    public TokenizedText Encode(string text)
    {
        var (ids, dropped) = _tokenizer.Encode(text, MaxLength);
        return new TokenizedText(ids, dropped);
    }

    public TokenBatch EncodeBatch(IReadOnlyList<string> texts) => TokenBatch.Pad([.. texts.Select(Encode)], PadId);
}
