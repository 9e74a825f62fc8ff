using System.Text;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// Hugging Face's BPE (SentencePiece-style when <c>byte_fallback</c> is set): a word starts as one symbol per code point
/// (a code point missing from the vocabulary becomes its <c>&lt;0xNN&gt;</c> byte tokens, or <c>unk</c>), then the
/// lowest-ranked adjacent pair is merged until none is left, ties going to the leftmost pair.
/// </summary>
internal sealed class BpeModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int[] _byteIds;
    private readonly int _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _ignoreMerges;

    /// <param name="merges">In rank order: the pair of token ids and the id of their concatenation.</param>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(int Left, int Right, int Merged)> merges, string? unkToken, bool fuseUnk, bool byteFallback, bool ignoreMerges)
    {
        _vocab = vocab;
        _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
        _unkId = -1;
        if (unkToken is not null && !vocab.TryGetValue(unkToken, out _unkId))
            throw new InvalidDataException($"BPE unk_token '{unkToken}' is not in the vocabulary");
        _byteIds = new int[256];
        for (var b = 0; b < 256; b++) _byteIds[b] = byteFallback && vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        _merges = new Dictionary<long, (int, int)>(merges.Count, PairComparer.Instance);
        // A repeated pair keeps its last rank, as the Rust map built from the list does.
        for (var rank = 0; rank < merges.Count; rank++) _merges[Key(merges[rank].Left, merges[rank].Right)] = (rank, merges[rank].Merged);
        MaxId = vocab.Count == 0 ? -1 : vocab.Values.Max();
    }

    private static long Key(int a, int b) => (long)a << 32 | (uint)b;

    /// <summary>long's own hash is upper ^ lower, which piles (a, b) id pairs into few buckets; this one mixes all bits.</summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)((ulong)key * 0x9E3779B97F4A7C15UL >> 32);
    }

    public int MaxId { get; }

    public bool TryGetId(string token, out int id) => _vocab.TryGetValue(token, out id);

    public void Tokenize(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole))
        {
            output.Add(whole);
            return;
        }
        var symbols = Symbols(word);
        Merge(symbols);
        output.AddRange(symbols);
    }

    private List<int> Symbols(string word)
    {
        var symbols = new List<int>(word.Length);
        var pendingUnk = false;
        Span<byte> bytes = stackalloc byte[4];
        for (var i = 0; i < word.Length;)
        {
            var width = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var codePoint = word.AsSpan(i, width);
            i += width;
            if (_lookup.TryGetValue(codePoint, out var id))
            {
                if (pendingUnk) symbols.Add(_unkId);
                pendingUnk = false;
                symbols.Add(id);
                continue;
            }
            var n = Encoding.UTF8.GetBytes(codePoint, bytes);
            var allBytes = true;
            for (var j = 0; j < n; j++) allBytes &= _byteIds[bytes[j]] >= 0;
            if (allBytes)
            {
                // Like the Rust engine, byte tokens do not flush a pending unk (moot when all 256 byte tokens exist).
                for (var j = 0; j < n; j++) symbols.Add(_byteIds[bytes[j]]);
                continue;
            }
            if (_unkId < 0) continue;
            if (pendingUnk && !_fuseUnk) symbols.Add(_unkId);
            pendingUnk = true;
        }
        if (pendingUnk) symbols.Add(_unkId);
        return symbols;
    }

    /// <summary>Hugging Face's <c>Word::merge_all</c>: a min-heap on (rank, position) over a linked list of symbols.</summary>
    private void Merge(List<int> symbols)
    {
        var n = symbols.Count;
        if (n < 2) return;
        var id = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (var i = 0; i < n; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }
        var queue = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>();
        for (var i = 0; i + 1 < n; i++)
            if (_merges.TryGetValue(Key(id[i], id[i + 1]), out var m)) queue.Enqueue((i, m.NewId), (m.Rank, i));

        while (queue.TryDequeue(out var top, out _))
        {
            var pos = top.Pos;
            if (!alive[pos] || next[pos] < 0) continue;
            var right = next[pos];
            // Entries go stale when a neighbour was merged first; the pair must still produce the same token.
            if (!_merges.TryGetValue(Key(id[pos], id[right]), out var current) || current.NewId != top.NewId) continue;

            id[pos] = top.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;

            if (prev[pos] >= 0 && _merges.TryGetValue(Key(id[prev[pos]], id[pos]), out var left))
                queue.Enqueue((prev[pos], left.NewId), (left.Rank, prev[pos]));
            if (next[pos] >= 0 && _merges.TryGetValue(Key(id[pos], id[next[pos]]), out var after))
                queue.Enqueue((pos, after.NewId), (after.Rank, pos));
        }

        symbols.Clear();
        for (var i = 0; i >= 0; i = next[i]) symbols.Add(id[i]);
    }
}
