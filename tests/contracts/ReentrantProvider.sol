// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice The part of RentalMarket this test contract calls.
interface IRentalMarket {
    function withdraw() external;
}

/// @title ReentrantProvider: a hostile provider payout address for tests/contracts only
/// @notice Registered as a dataset's provider. In mode Reenter, its `receive` calls
///         `withdraw()` again while the first withdraw's transfer is in flight and records what
///         happened; in mode Reject, its `receive` reverts, so the market's transfer fails.
contract ReentrantProvider {
    enum Mode { Reenter, Reject }

    IRentalMarket public immutable market;
    Mode public mode;
    /// @notice How many times `receive` ran.
    uint256 public receipts;
    /// @notice True when a reentrant `withdraw` returned without reverting.
    bool public reentered;
    /// @notice The revert data of the reentrant `withdraw` (NothingToWithdraw() when safe).
    bytes public reentryError;

    constructor(IRentalMarket market_, Mode mode_) {
        market = market_;
        mode = mode_;
    }

    /// @notice Starts a withdraw as the provider.
    function attack() external {
        market.withdraw();
    }

    /// @notice Switches mode (the test flips Reject to Reenter to show the balance survived).
    function setMode(Mode mode_) external {
        mode = mode_;
    }

    receive() external payable {
        receipts += 1;
        if (mode == Mode.Reject) revert("ReentrantProvider: rejecting ether");
        if (receipts == 1) {
            try market.withdraw() {
                reentered = true;
            } catch (bytes memory err) {
                reentryError = err;
            }
        }
    }
}
