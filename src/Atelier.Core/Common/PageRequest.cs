using Atelier.Contracts.Errors;

namespace Atelier.Core.Common;

/// <summary>The paging of every list: <c>pageNumber</c> from 1, <c>pageSize</c> from 1 to <see cref="MaxPageSize"/>.</summary>
public readonly record struct PageRequest(int PageNumber, int PageSize)
{
    public const int DefaultPageSize = 20;
    public const int MaxPageSize = 100;

    /// <summary>Checks the raw query values: over the cap is <c>b_query_pagesizeexceedlimit</c>, nonsense is <c>p_common_inputinvalid</c>.</summary>
    public static PageRequest From(int? pageNumber, int? pageSize)
    {
        var number = pageNumber ?? 1;
        var size = pageSize ?? DefaultPageSize;
        if (size > MaxPageSize)
        {
            throw new AtelierException(ErrorCatalog.b_query_pagesizeexceedlimit,
                errCode: ErrCodes.PageSizeCap, errMessage: $"pageSize {size} is over the cap of {MaxPageSize}");
        }

        if (size < 1)
        {
            throw AtelierException.InvalidInput("pageSize", "must be at least 1");
        }

        if (number < 1 || number > 1_000_000)
        {
            throw AtelierException.InvalidInput("pageNumber", "must be between 1 and 1000000");
        }

        return new PageRequest(number, size);
    }

    public int Skip => (PageNumber - 1) * PageSize;
}
