namespace NewBie.Host.Integrations;

/// <summary>
/// Each user's webhook signing secret. Stored as issued because signing needs it; shown to the user once, when
/// created or rotated. Its contract is <c>NewBie.Host.Tests.Storage.WebhookSecretStoreContract</c>.
/// </summary>
public interface IWebhookSecretStore
{
    string? Find(string userId);

    /// <summary>Sets the user's secret, replacing any previous one.</summary>
    void Save(string userId, string secret);
}

public static class WebhookSecretStoreExtensions
{
    /// <summary>Creates the user's secret or replaces it: deliveries from now on are signed with the new one.</summary>
    public static string Rotate(this IWebhookSecretStore store, string userId)
    {
        var secret = WebhookSigner.NewSecret();
        store.Save(userId, secret);
        return secret;
    }
}
