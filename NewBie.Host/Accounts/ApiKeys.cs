using System.Security.Cryptography;

namespace NewBie.Host.Accounts;

/// <summary>
/// API keys look like <c>nb_ID_SECRET</c>: ID (12 hex characters) names the stored record, SECRET is 32 random bytes
/// (256 bits, base64url). The whole key is hashed with SHA-256: for a key this random a slow KDF adds nothing.
/// </summary>
public static class ApiKeys
{
    public const string Prefix = "nb_";
    private const int IdBytes = 6, SecretBytes = 32;

    public static (string Key, string Id, byte[] Hash) Create()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdBytes));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(SecretBytes));
        var key = $"{Prefix}{id}_{secret}";
        return (key, id, Hash(key));
    }

    /// <summary>The record id of a well-formed key, or null.</summary>
    public static string? IdOf(string key)
    {
        if (!key.StartsWith(Prefix, StringComparison.Ordinal)) return null;
        var rest = key.AsSpan(Prefix.Length);
        if (rest.Length <= IdBytes * 2 + 1 || rest[IdBytes * 2] != '_') return null;
        var id = rest[..(IdBytes * 2)];
        foreach (var c in id)
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return null;
        return id.ToString();
    }

    public static byte[] Hash(string key) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key));

    public static bool Matches(string key, byte[] storedHash) => CryptographicOperations.FixedTimeEquals(Hash(key), storedHash);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
