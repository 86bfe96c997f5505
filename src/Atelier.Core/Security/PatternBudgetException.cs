namespace Atelier.Core.Security;

/// <summary>The patterns took more than their budget on a request.</summary>
public sealed class PatternBudgetException : Exception;
