using LiteDB;
using NewBie.Host.Integrations;

namespace NewBie.Host.Storage;

/// <summary>Webhook signing secrets in the app database, one record per user.</summary>
public sealed class LiteDbWebhookSecretStore(AppDatabase database) : IWebhookSecretStore
{
    private readonly ILiteCollection<WebhookSecretRecord> _secrets = database.Collection<WebhookSecretRecord>("webhook_secrets");

    public string? Find(string userId) => _secrets.FindById(userId)?.Secret;

    public void Save(string userId, string secret) => _secrets.Upsert(new WebhookSecretRecord { UserId = userId, Secret = secret });
}

public sealed class WebhookSecretRecord
{
    [BsonId] public string UserId { get; set; } = "";
    public string Secret { get; set; } = "";
}
