using NewBie.Host.Integrations;
using static NewBie.Host.Storage.Postgres.PostgresDatabase;

namespace NewBie.Host.Storage.Postgres;

/// <summary>Webhook signing secrets in PostgreSQL, one row per user.</summary>
public sealed class PostgresWebhookSecretStore(PostgresDatabase database) : IWebhookSecretStore
{
    public string? Find(string userId) =>
        database.Source.Command("SELECT secret FROM newbie_webhook_secrets WHERE user_id = $1", Text(userId)).Scalar<string>();

    public void Save(string userId, string secret) =>
        database.Source.Command("""
            INSERT INTO newbie_webhook_secrets (user_id, secret) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret
            """, Text(userId), Text(secret)).Execute();
}
