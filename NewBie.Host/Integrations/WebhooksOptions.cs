using System.ComponentModel.DataAnnotations;

namespace NewBie.Host.Integrations;

public sealed class WebhooksOptions
{
    public const string Section = "Webhooks";

    /// <summary>Lets webhooks reach loopback, private and link-local addresses (a receiver on the same machine or LAN).</summary>
    public bool AllowPrivateTargets { get; set; }

    /// <summary>Deliveries tried before the webhook is marked failed.</summary>
    [Range(1, 20)]
    public int MaxAttempts { get; set; } = 6;

    /// <summary>Wait before the second attempt; each later wait doubles.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>One attempt's limit, connect to response.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);
}
