using Atelier.Core.Security;

namespace Atelier.Core.Tests.Security;

public class SecretsTests
{
    [Theory]
    [InlineData(Secrets.TokenPrefix)]
    [InlineData(Secrets.PlatformKeyPrefix)]
    [InlineData(Secrets.SessionPrefix)]
    [InlineData(Secrets.WorkerKeyPrefix)]
    public void Issue_IsWellFormedForItsOwnPrefixOnly(string prefix)
    {
        var secret = Secrets.Issue(prefix);
        Assert.Matches($"^{prefix}_[0-9A-Za-z]{{46}}$", secret);
        Assert.True(Secrets.IsWellFormed(secret, prefix));
        foreach (var other in new[] { Secrets.TokenPrefix, Secrets.PlatformKeyPrefix, Secrets.SessionPrefix, Secrets.WorkerKeyPrefix }.Where(p => p != prefix))
        {
            Assert.False(Secrets.IsWellFormed(secret, other));
        }
    }

    [Fact]
    public void IsWellFormed_OneCharacterMutations_AreRefusedByChecksumAlone()
    {
        // The check that runs before any database read: every single-character change of a real token fails it.
        var secret = Secrets.Issue(Secrets.TokenPrefix);
        const string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        var refused = 0;
        for (var i = Secrets.TokenPrefix.Length + 1; i < secret.Length; i++)
        {
            foreach (var c in alphabet.Where(c => c != secret[i]))
            {
                var mutated = string.Concat(secret.AsSpan(0, i), c.ToString(), secret.AsSpan(i + 1));
                Assert.False(Secrets.IsWellFormed(mutated, Secrets.TokenPrefix), mutated);
                refused++;
            }
        }

        Assert.True(refused > 2500);
    }

    [Fact]
    public void IsWellFormed_WrongLengthSeparatorOrAlphabet_IsRefused()
    {
        var secret = Secrets.Issue(Secrets.TokenPrefix);
        Assert.False(Secrets.IsWellFormed(null, Secrets.TokenPrefix));
        Assert.False(Secrets.IsWellFormed(secret[..^1], Secrets.TokenPrefix));
        Assert.False(Secrets.IsWellFormed(secret + "0", Secrets.TokenPrefix));
        Assert.False(Secrets.IsWellFormed(secret.Replace("atk_", "atk-", StringComparison.Ordinal), Secrets.TokenPrefix));
        Assert.False(Secrets.IsWellFormed(secret[..10] + "é" + secret[11..], Secrets.TokenPrefix));
    }

    [Fact]
    public void Hash_IsSha256OfTheWholeSecret_ComparedByValue()
    {
        var a = Secrets.Issue(Secrets.TokenPrefix);
        var b = Secrets.Issue(Secrets.TokenPrefix);
        Assert.Equal(32, Secrets.Hash(a).Length);
        Assert.True(Secrets.HashEquals(Secrets.Hash(a), Secrets.Hash(a)));
        Assert.False(Secrets.HashEquals(Secrets.Hash(a), Secrets.Hash(b)));
        Assert.False(Secrets.HashEquals(Secrets.Hash(a), Secrets.Hash(a).AsSpan(0, 31)));
    }

    [Fact]
    public void DisplayPrefix_ShowsThePrefixAndSixCharacters_NeverTheSecret()
    {
        var secret = Secrets.Issue(Secrets.PlatformKeyPrefix);
        var shown = Secrets.DisplayPrefix(secret);
        Assert.Equal(secret[..11], shown);
        Assert.StartsWith("atpk_", shown, StringComparison.Ordinal);
        Assert.False(Secrets.IsWellFormed(shown, Secrets.PlatformKeyPrefix));
    }
}
