using Atelier.Core.Jobs;
using Atelier.Core.Webhooks;

namespace Atelier.Core.Tests.Webhooks;

public class WebhooksTests
{
    [Fact]
    public void Sign_StandardWebhooksExample_GivesItsSignature()
    {
        // The example of the Standard Webhooks specification.
        Assert.Equal("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            WebhookSigning.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, """{"test": 2432232314}""", ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]));
    }

    [Fact]
    public void Sign_DuringARotation_SignsWithEverySecret()
    {
        var (old, current) = (WebhookSigning.NewSecret(), WebhookSigning.NewSecret());
        var both = WebhookSigning.Sign("msg_1", 1700000000, "{}", [old, current]).Split(' ');
        Assert.Equal(new[] { WebhookSigning.Sign("msg_1", 1700000000, "{}", [old]), WebhookSigning.Sign("msg_1", 1700000000, "{}", [current]) }, both);
        Assert.NotEqual(both[0], both[1]);
        Assert.NotEqual(both[1], WebhookSigning.Sign("msg_1", 1700000001, "{}", [current]));
    }

    [Fact]
    public void NewSecret_IsThirtyTwoRandomBytesBehindThePrefix()
    {
        var secret = WebhookSigning.NewSecret();
        Assert.StartsWith(WebhookSigning.SecretPrefix, secret, StringComparison.Ordinal);
        Assert.Equal(32, WebhookSigning.KeyOf(secret).Length);
        Assert.NotEqual(secret, WebhookSigning.NewSecret());
    }

    [Fact]
    public void Normalize_NoEvents_IsEveryEvent_SomeKeepTheirCanonicalOrder()
    {
        Assert.Equal(",started,completed,failed,canceled,", WebhookEvents.Normalize(null, "events"));
        Assert.Equal(",started,completed,failed,canceled,", WebhookEvents.Normalize([], "events"));
        Assert.Equal(",completed,canceled,", WebhookEvents.Normalize(["canceled", "completed", "canceled"], "events"));
        Assert.Equal(new[] { "completed", "canceled" }, WebhookEvents.Parse(",completed,canceled,"));
    }

    [Fact]
    public void Normalize_UnknownEvent_IsInvalidInputNamingIt()
    {
        Assert.StartsWith("webhookEvents: 'done' is not an event", Invalid.Input(() => WebhookEvents.Normalize(["completed", "done"], "webhookEvents")),
            StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("succeeded", "completed")]
    [InlineData("failed", "failed")]
    [InlineData("canceled", "canceled")]
    [InlineData("aborted", "canceled")]
    [InlineData("running", null)]
    [InlineData("queued", null)]
    public void OfFinalState_IsTheEventAJobsEndSends(string state, string? evt)
    {
        Assert.Equal(evt, WebhookEvents.OfFinalState(state));
    }

    [Fact]
    public void DelayAfter_FollowsTheSchedule_ItsLastEntryOnceRunOut_WithinTheJitter()
    {
        double[] schedule = [0, 5, 300];
        var random = new Random(7);
        Assert.Equal(TimeSpan.Zero, WebhookRelay.DelayAfter(0, schedule, 0.2, random));
        for (var i = 0; i < 200; i++)
        {
            var second = WebhookRelay.DelayAfter(1, schedule, 0.2, random).TotalSeconds;
            Assert.InRange(second, 4, 6);
            Assert.InRange(WebhookRelay.DelayAfter(9, schedule, 0.2, random).TotalSeconds, 240, 360);
        }

        Assert.Equal(TimeSpan.FromSeconds(300), WebhookRelay.DelayAfter(2, schedule, 0, random));
        Assert.Equal(TimeSpan.Zero, WebhookRelay.DelayAfter(3, [], 0.2, random));
    }
}
