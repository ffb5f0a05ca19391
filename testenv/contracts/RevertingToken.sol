// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// A token whose balance reads always revert, for rule-target and evaluation error paths.
contract RevertingToken {
    function balanceOf(address) external pure returns (uint256) {
        revert("balanceOf disabled");
    }

    function balanceOf(address, uint256) external pure returns (uint256) {
        revert("balanceOf disabled");
    }
}
