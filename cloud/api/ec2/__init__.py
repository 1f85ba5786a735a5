"""The EC2 Query API at /ec2 (issue 18): what boto3, the AWS CLI and other EC2 tooling send,
answered from the same service functions, tenancy, policy and quotas as the OpenStack APIs.

    views.py      the one endpoint: authenticate (signature.py), find the action, answer XML
    signature.py  AWS Signature Version 4 (and 2) checked against the stored EC2 credential
    params.py     the Query protocol's flattened parameters (Filter.1.Value.2=…) as a tree
    render.py     answers and errors in EC2's XML
    errors.py     EC2's error codes, and Kumo's refusals translated into them
    registry.py   the actions, each a function registered with its policy rule
    resources.py  EC2 ids to Kumo's rows and back (cloud.ids makes the ids)
    listing.py    filters, MaxResults/NextToken paging
    actions_*.py  the actions, by resource
"""
