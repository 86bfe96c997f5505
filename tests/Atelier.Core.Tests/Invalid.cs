using Atelier.Contracts.Errors;

namespace Atelier.Core.Tests;

/// <summary>Asserts a <c>p_common_inputinvalid</c> refusal and returns what it says is wrong (<c>field: problem</c>).</summary>
internal static class Invalid
{
    public static string Input(Action check)
    {
        var e = Assert.Throws<AtelierException>(check);
        Assert.Equal(ErrorCatalog.p_common_inputinvalid, e.Code);
        return e.Values["Input"];
    }
}
