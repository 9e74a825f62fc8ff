using System.Text;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// Hugging Face's Unigram model: the best-scoring segmentation of a word (Viterbi over the pieces' log-probabilities).
/// A code point with no single-character piece may be covered by <c>unk</c> at <c>min_score - 10</c>; consecutive
/// <c>unk</c> pieces fuse into one.
/// </summary>
internal sealed class UnigramModel : ITokenModel
{
    private const double UnknownPenalty = 10.0;

    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly double[] _scores;
    private readonly int _unkId;
    private readonly int _maxPieceLength;
    private readonly double _unkScore;
    private readonly bool _byteFallback;

    public UnigramModel(IReadOnlyList<(string Piece, double Score)> vocab, int unkId, bool byteFallback)
    {
        if (unkId < 0 || unkId >= vocab.Count) throw new InvalidDataException($"Unigram unk_id {unkId} is outside the {vocab.Count}-piece vocabulary");
        _ids = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        _scores = new double[vocab.Count];
        var minScore = double.PositiveInfinity;
        for (var i = 0; i < vocab.Count; i++)
        {
            var (piece, score) = vocab[i];
            _ids[piece] = i;
            _scores[i] = score;
            minScore = Math.Min(minScore, score);
            _maxPieceLength = Math.Max(_maxPieceLength, piece.Length);
        }
        _lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        _unkId = unkId;
        _unkScore = minScore - UnknownPenalty;
        _byteFallback = byteFallback;
    }

    public int MaxId => _scores.Length - 1;

    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);

    public void Tokenize(string word, List<int> output)
    {
        var n = word.Length;
        if (n == 0) return;
        var bestScore = new double[n + 1];
        var startOf = new int[n + 1];
        var pieceOf = new int[n + 1];
        Array.Fill(startOf, -1);

        for (var start = 0; start < n;)
        {
            var width = char.IsHighSurrogate(word[start]) && start + 1 < n && char.IsLowSurrogate(word[start + 1]) ? 2 : 1;
            var here = bestScore[start];
            var hasSingle = false;
            // Shorter pieces first, and a later candidate wins only when strictly better: the tie-break of the Rust engine.
            for (var len = 1; len <= _maxPieceLength && start + len <= n; len++)
            {
                if (!_lookup.TryGetValue(word.AsSpan(start, len), out var id)) continue;
                var end = start + len;
                var candidate = here + _scores[id];
                if (startOf[end] < 0 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    startOf[end] = start;
                    pieceOf[end] = id;
                }
                hasSingle |= len == width;
            }
            if (!hasSingle)
            {
                var end = start + width;
                var candidate = here + _unkScore;
                if (startOf[end] < 0 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    startOf[end] = start;
                    pieceOf[end] = _unkId;
                }
            }
            start += width;
        }

        var reversed = new List<(int Start, int End, int Id)>();
        for (var end = n; end > 0;)
        {
            var start = startOf[end];
            if (pieceOf[end] == _unkId && reversed.Count > 0 && reversed[^1].Id == _unkId && reversed[^1].Start == end)
                reversed[^1] = (start, reversed[^1].End, _unkId);
            else reversed.Add((start, end, pieceOf[end]));
            end = start;
        }
        for (var i = reversed.Count - 1; i >= 0; i--)
        {
            var (start, end, id) = reversed[i];
            if (id != _unkId)
            {
                output.Add(id);
                continue;
            }
            // A fused run is looked up as a whole; it is unk unless that string happens to be a piece.
            var text = word.AsSpan(start, end - start);
            if (_lookup.TryGetValue(text, out var known)) output.Add(known);
            else if (!_byteFallback || !TryBytes(text, output)) output.Add(_unkId);
        }
    }

    private bool TryBytes(ReadOnlySpan<char> text, List<int> output)
    {
        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        var ids = new int[bytes.Length];
        for (var i = 0; i < bytes.Length; i++)
            if (!_ids.TryGetValue($"<0x{bytes[i]:X2}>", out ids[i])) return false;
        output.AddRange(ids);
        return true;
    }
}
