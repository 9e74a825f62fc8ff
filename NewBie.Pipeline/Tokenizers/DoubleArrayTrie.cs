using System.Buffers.Binary;
using System.Text;

namespace NewBie.Pipeline.Tokenizers;

/// <summary>
/// Writes a <c>precompiled_charsmap</c> blob (the layout <see cref="PrecompiledCharsmap"/> reads) from replacement rules,
/// so generated tokenizers can carry a real normalization table. A small builder: children of a node get the lowest unused
/// XOR base whose slots are free, which is all the darts-clone lookup needs; it is meant for tables of a few hundred rules.
/// </summary>
internal static class DoubleArrayTrie
{
    private sealed class Node
    {
        public readonly SortedDictionary<byte, Node> Children = [];
        public int? Value;
        public int Position;
    }

    public static byte[] BuildCharsmap(IEnumerable<KeyValuePair<string, string>> rules)
    {
        var root = new Node();
        var strings = new MemoryStream();
        var offsets = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (from, to) in rules.OrderBy(r => r.Key, StringComparer.Ordinal))
        {
            if (from.Length == 0 || from.Contains('\0')) throw new ArgumentException($"charsmap key '{from}' is empty or contains NUL");
            if (!offsets.TryGetValue(to, out var offset))
            {
                offset = (int)strings.Length;
                offsets[to] = offset;
                strings.Write(Encoding.UTF8.GetBytes(to));
                strings.WriteByte(0);
            }
            var node = root;
            foreach (var b in Encoding.UTF8.GetBytes(from))
            {
                if (!node.Children.TryGetValue(b, out var child)) node.Children[b] = child = new Node();
                node = child;
            }
            node.Value = offset;
        }

        var units = new List<uint> { 0 };
        var used = new List<bool> { true };
        // Bases must be unique: the label check only tells apart children of different bases.
        var usedBases = new HashSet<int>();
        var queue = new Queue<Node>([root]);
        while (queue.TryDequeue(out var node))
        {
            // Slots this node's children need, relative to its base: label 0 holds the value of a key ending here.
            var labels = node.Children.Keys.Select(b => (int)b).ToList();
            if (node.Value is not null) labels.Insert(0, 0);
            var basePos = 1;
            while (usedBases.Contains(basePos) || labels.Any(l => IsUsed(used, basePos ^ l))) basePos++;
            usedBases.Add(basePos);
            foreach (var l in labels) Use(used, units, basePos ^ l);

            var offset = (uint)(node.Position ^ basePos);
            if (offset >= 1u << 21) throw new InvalidOperationException("charsmap too large for the simple offset encoding");
            units[node.Position] |= offset << 10 | (node.Value is not null ? 1u << 8 : 0);
            if (node.Value is { } value) units[basePos] = 1u << 31 | (uint)value;
            foreach (var (label, child) in node.Children)
            {
                child.Position = basePos ^ label;
                units[child.Position] = label;
                queue.Enqueue(child);
            }
        }

        var blob = new byte[4 + 4 * units.Count + strings.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(blob, (uint)(4 * units.Count));
        for (var i = 0; i < units.Count; i++) BinaryPrimitives.WriteUInt32LittleEndian(blob.AsSpan(4 + 4 * i), units[i]);
        strings.ToArray().CopyTo(blob, 4 + 4 * units.Count);
        return blob;
    }

    private static bool IsUsed(List<bool> used, int pos) => pos == 0 || (pos < used.Count && used[pos]);

    private static void Use(List<bool> used, List<uint> units, int pos)
    {
        while (used.Count <= pos)
        {
            used.Add(false);
            units.Add(0);
        }
        used[pos] = true;
    }
}
