"""A tenant's customers: accounts and their users, found and listed; dunning policies,
standing and manual controls; parked accounts and events released."""
