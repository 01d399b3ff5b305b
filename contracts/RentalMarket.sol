// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title RentalMarket: dataset rentals of one cce4long plane, paid on-chain
/// @notice The operator (the plane's deployer) registers datasets with their provider's payout
///         address, price per day and maximum days. A consumer rents a dataset for whole days by
///         paying exactly price x days; the `Rented` event is the rental record the plane indexes
///         (docs/ledger.md). Payments are credited to the provider, who pulls them with `withdraw`.
/// @dev Invariants: no loops; no external call except the single transfer at the end of `withdraw`
///      (checks-effects-interactions, the balance is zeroed before the call); the contract has no
///      `receive`/`fallback`, so ether enters only through `rent` and every wei it holds is owed to
///      some provider in `pendingWithdrawals`. Arithmetic is checked (Solidity >= 0.8) and, by the
///      widths chosen, cannot overflow: price (128 bits) x days (32 bits) < 2^160, and
///      days x 86400 + block.timestamp fits in 64 bits.
///      `planeId` is a storage variable rather than an immutable so that the runtime code on chain
///      is byte for byte the committed `deployedBytecode` (contracts/build/RentalMarket.json).
contract RentalMarket {
    /// @notice A dataset as the operator registered it.
    /// @param provider Where the rent of this dataset is credited (never zero once registered).
    /// @param pricePerDay Price of one day, in wei (never zero once registered).
    /// @param maxDays The longest rental one `rent` call may buy (never zero once registered).
    /// @param active False until registered and after `deactivateDataset`; only active ones rent.
    struct Dataset {
        address provider;
        uint128 pricePerDay;
        uint32 maxDays;
        bool active;
    }

    /// @notice The plane this market belongs to: keccak256("cce4long.plane.v1" || plane key).
    bytes32 public planeId;
    /// @notice The only account allowed to register/deactivate datasets, pause, and hand over.
    address public operator;
    /// @notice When true, `rent` reverts with `ContractPaused`; `withdraw` still works.
    bool public paused;
    /// @notice Registered datasets by on-chain dataset id (see docs/ledger.md for the id).
    mapping(bytes32 => Dataset) public datasets;
    /// @notice Wei each provider may pull with `withdraw`.
    mapping(address => uint256) public pendingWithdrawals;

    /// @notice A dataset was added or updated (and is active).
    event DatasetRegistered(
        bytes32 indexed datasetId, address indexed provider, uint128 pricePerDay, uint32 maxDays
    );
    /// @notice A dataset can no longer be rented (existing rentals are unaffected).
    event DatasetDeactivated(bytes32 indexed datasetId);
    /// @notice A rental: `consumer` paid `amount` wei for [start, end), end = start + days_ days.
    event Rented(
        bytes32 indexed datasetId,
        address indexed consumer,
        uint64 start,
        uint64 end,
        uint32 days_,
        uint256 amount
    );
    /// @notice A provider pulled `amount` wei.
    event Withdrawn(address indexed provider, uint256 amount);
    /// @notice Renting was paused (true) or resumed (false).
    event PausedSet(bool paused);
    /// @notice The operator role moved.
    event OperatorTransferred(address indexed previousOperator, address indexed newOperator);

    /// @notice The caller is not the operator.
    error NotOperator();
    /// @notice Renting is paused.
    error ContractPaused();
    /// @notice No active dataset has this id.
    error UnknownDataset(bytes32 datasetId);
    /// @notice A rental of zero days.
    error ZeroDays();
    /// @notice A rental longer than the dataset's maximum.
    error TooManyDays(uint32 maxDays);
    /// @notice The ether sent is not exactly price x days.
    error WrongPayment(uint256 expected, uint256 sent);
    /// @notice The caller has no balance to withdraw.
    error NothingToWithdraw();
    /// @notice The transfer to the provider failed (the balance is restored by the revert).
    error TransferFailed();
    /// @notice A provider or new operator of address zero.
    error ZeroAddress();
    /// @notice A dataset price of zero.
    error ZeroPrice();
    /// @notice A dataset maximum of zero days.
    error ZeroMaxDays();

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator();
        _;
    }

    /// @param planeId_ The plane's id; the plane refuses a contract whose `planeId()` differs.
    constructor(bytes32 planeId_) {
        planeId = planeId_;
        operator = msg.sender;
        emit OperatorTransferred(address(0), msg.sender);
    }

    /// @notice Adds a dataset, or updates (and reactivates) one. Balances already credited to a
    ///         previous provider stay that provider's.
    /// @param datasetId The on-chain dataset id.
    /// @param provider Payout address for future rentals.
    /// @param pricePerDay Wei per day, > 0.
    /// @param maxDays Longest rental per `rent` call, > 0.
    function registerDataset(bytes32 datasetId, address provider, uint128 pricePerDay, uint32 maxDays)
        external
        onlyOperator
    {
        if (provider == address(0)) revert ZeroAddress();
        if (pricePerDay == 0) revert ZeroPrice();
        if (maxDays == 0) revert ZeroMaxDays();
        datasets[datasetId] = Dataset(provider, pricePerDay, maxDays, true);
        emit DatasetRegistered(datasetId, provider, pricePerDay, maxDays);
    }

    /// @notice Stops new rentals of an active dataset; rentals already made are unaffected.
    /// @param datasetId The on-chain dataset id; reverts `UnknownDataset` when not active.
    function deactivateDataset(bytes32 datasetId) external onlyOperator {
        Dataset storage d = datasets[datasetId];
        if (!d.active) revert UnknownDataset(datasetId);
        d.active = false;
        emit DatasetDeactivated(datasetId);
    }

    /// @notice Rents `datasetId` for `days_` days from now, paying exactly pricePerDay x days_.
    /// @dev Effects only (a balance credit and an event): no external call, so no reentrancy.
    /// @param datasetId The on-chain dataset id of an active dataset.
    /// @param days_ Number of days, 1..maxDays.
    function rent(bytes32 datasetId, uint32 days_) external payable {
        if (paused) revert ContractPaused();
        Dataset storage d = datasets[datasetId];
        if (!d.active) revert UnknownDataset(datasetId);
        if (days_ == 0) revert ZeroDays();
        uint32 maxDays = d.maxDays;
        if (days_ > maxDays) revert TooManyDays(maxDays);
        uint256 expected = uint256(d.pricePerDay) * days_;
        if (msg.value != expected) revert WrongPayment(expected, msg.value);

        pendingWithdrawals[d.provider] += msg.value;
        uint64 start = uint64(block.timestamp);
        uint64 end = start + uint64(days_) * 1 days;
        emit Rented(datasetId, msg.sender, start, end, days_, msg.value);
    }

    /// @notice Sends the caller its whole balance. Works while paused.
    /// @dev Checks, effects (balance zeroed, event), then the one interaction. A reentrant call
    ///      from the recipient finds a zero balance and reverts `NothingToWithdraw`.
    function withdraw() external {
        uint256 amount = pendingWithdrawals[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        pendingWithdrawals[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice Pauses (true) or resumes (false) renting.
    /// @param paused_ The new state.
    function setPaused(bool paused_) external onlyOperator {
        paused = paused_;
        emit PausedSet(paused_);
    }

    /// @notice Hands the operator role to `newOperator` (effective at once).
    /// @param newOperator The new operator, not zero.
    function transferOperator(address newOperator) external onlyOperator {
        if (newOperator == address(0)) revert ZeroAddress();
        emit OperatorTransferred(operator, newOperator);
        operator = newOperator;
    }
}
