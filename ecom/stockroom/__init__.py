"""Moving stock between locations (transfers) and bringing it in from suppliers
(purchase orders), each step writing ledger movements through ecom.inventory."""
