using NewBie.Host.Integrations;

namespace NewBie.Host.Tests.Storage;

/// <summary>What every <see cref="IWebhookSecretStore"/> does (see <see cref="StoreContract{TStore}"/> for how to run it on another one).</summary>
public abstract class WebhookSecretStoreContract(Func<IWebhookSecretStore> factory, IDisposable? resources)
    : StoreContract<IWebhookSecretStore>(factory, resources)
{
    [SkippableFact]
    public void A_user_without_a_secret_has_none()
    {
        Assert.Null(Store.Find("alice"));
    }

    [SkippableFact]
    public void A_saved_secret_is_found_exactly_and_only_for_its_user()
    {
        Store.Save("alice", "whsec_QUJDRA==");
        Assert.Equal("whsec_QUJDRA==", Another().Find("alice"));
        Assert.Null(Store.Find("bob"));
    }

    [SkippableFact]
    public void Rotating_replaces_the_secret_with_a_new_one()
    {
        var first = Store.Rotate("alice");
        var second = Another().Rotate("alice");

        Assert.StartsWith("whsec_", first);
        Assert.NotEqual(first, second);
        Assert.Equal(second, Store.Find("alice"));
    }
}
