using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using NewBie.Host.Accounts;
using NewBie.Host.Jobs;

namespace NewBie.Host.Studio;

/// <summary>
/// A studio page: knows who is signed in (the page request's user, then the circuit's), and while its circuit is open
/// re-reads its data when any job changes (the job store's change signal, at most every <see cref="Throttle"/>), so
/// the page follows the queue without reloads or polling.
/// </summary>
public abstract class StudioPageBase : ComponentBase, IDisposable
{
    public static readonly TimeSpan Throttle = TimeSpan.FromMilliseconds(200);

    private readonly CancellationTokenSource _closed = new();

    [Inject] public required AuthenticationStateProvider Authentication { get; set; }
    [Inject] public required JobStore Jobs { get; set; }
    [Inject] public required TimeProvider Time { get; set; }

    /// <summary>Never null once initialised: the pages and their circuit are only open to signed-in users.</summary>
    protected CurrentUser Me { get; private set; } = new("", false, null);

    /// <summary>Reads the page's data; on the render thread.</summary>
    protected virtual void Refresh()
    {
    }

    /// <summary>Reads the page's data where some of it takes I/O (the output store may be a bucket); <see cref="Refresh"/> otherwise.</summary>
    protected virtual Task RefreshAsync()
    {
        Refresh();
        return Task.CompletedTask;
    }

    protected override async Task OnInitializedAsync()
    {
        var state = await Authentication.GetAuthenticationStateAsync();
        Me = CurrentUser.From(state.User) ?? throw new UnauthorizedAccessException("The studio is for signed-in users.");
        await RefreshAsync();
    }

    protected override void OnAfterRender(bool firstRender)
    {
        // Only an interactive render gets here: prerendering has no circuit to push to.
        if (firstRender) _ = FollowJobsAsync();
    }

    private async Task FollowJobsAsync()
    {
        var closed = _closed.Token;
        try
        {
            while (!closed.IsCancellationRequested)
            {
                await Jobs.NextChange.WaitAsync(closed);
                await Task.Delay(Throttle, Time, closed);
                await InvokeAsync(async () =>
                {
                    await RefreshAsync();
                    StateHasChanged();
                });
            }
        }
        catch (OperationCanceledException)
        {
            // The circuit closed.
        }
        catch (ObjectDisposedException)
        {
            // The circuit closed between the signal and the render.
        }
        catch (Exception e) when (!closed.IsCancellationRequested)
        {
            // Reported like an event handler's exception: logged, and the circuit ends instead of going stale.
            await DispatchExceptionAsync(e);
        }
    }

    public void Dispose()
    {
        _closed.Cancel();
        _closed.Dispose();
        GC.SuppressFinalize(this);
    }

    protected static string Eta(double? seconds) => seconds switch
    {
        null => "",
        < 1 => "any moment",
        < 90 => $"~{Math.Ceiling(seconds.Value)} s",
        _ => $"~{Math.Ceiling(seconds.Value / 60)} min",
    };

    protected static string Bytes(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.#} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / 1024.0 / 1024:0.#} MiB",
        _ => $"{bytes / 1024.0 / 1024 / 1024:0.##} GiB",
    };
}
