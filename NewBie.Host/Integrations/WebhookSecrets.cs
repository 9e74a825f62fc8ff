using LiteDB;
using NewBie.Host.Storage;

namespace NewBie.Host.Integrations;

/// <summary>
/// Each user's webhook signing secret, in the app database. Stored as issued because signing needs it; shown to the
/// user once, when created or rotated.
/// </summary>
public sealed class WebhookSecrets(AppDatabase database)
{
    private readonly ILiteCollection<WebhookSecretRecord> _secrets = database.Collection<WebhookSecretRecord>("webhook_secrets");

    public string? Find(string userId) => _secrets.FindById(userId)?.Secret;

    /// <summary>Creates the user's secret or replaces it: deliveries from now on are signed with the new one.</summary>
    public string Rotate(string userId)
    {
        var secret = WebhookSigner.NewSecret();
        _secrets.Upsert(new WebhookSecretRecord { UserId = userId, Secret = secret });
        return secret;
    }
}

public sealed class WebhookSecretRecord
{
    [BsonId] public string UserId { get; set; } = "";
    public string Secret { get; set; } = "";
}
